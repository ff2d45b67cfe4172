/**
 * `/files`: upload a batch input file, look one up, and stream one's content, as openai-node's
 * `resources/files.ts` does, through the one `ApiClient`.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { MalformedResponseError } from '../errors.js';
import { noBatchEngine, notFound } from './batches.js';
import type { ApiClient } from './client.js';

/** The fields of OpenAI's `OpenAIFile` this tool reads. */
export interface OpenAIFile {
  id: string;
  bytes: number | undefined;
  filename: string | undefined;
  purpose: string | undefined;
}

/** Read size for uploads: large enough to keep the socket busy, small enough to not matter. */
const READ_CHUNK = 1024 * 1024;

export class Files {
  constructor(private readonly client: ApiClient) {}

  /**
   * `POST /files` (multipart, `purpose=batch`): the local file `path`, streamed from disk
   * under the name `filename`. A 404 means the server has no batch engine.
   */
  async upload(path: string, filename: string, signal?: AbortSignal): Promise<OpenAIFile> {
    const { size } = await stat(path);
    const stream = createReadStream(path, { highWaterMark: READ_CHUNK });
    try {
      return parseFile(await this.client.uploadFile('/files', filename, stream, size, { signal }));
    } catch (error) {
      throw noBatchEngine(error, this.client, 'POST /files');
    } finally {
      stream.destroy();
    }
  }

  /** `GET /files/{id}`. */
  async retrieve(id: string, signal?: AbortSignal): Promise<OpenAIFile> {
    try {
      return parseFile(await this.client.getJson(`/files/${encodeURIComponent(id)}`, { signal }));
    } catch (error) {
      throw notFound(error, `file ${id}`);
    }
  }

  /**
   * `GET /files/{id}/content`: the file's bytes as they arrive (output files are deleted 30
   * days after their batch finished: then this is a 404).
   */
  async content(id: string, signal?: AbortSignal): Promise<AsyncIterable<Uint8Array>> {
    try {
      return await this.client.downloadStream(`/files/${encodeURIComponent(id)}/content`, {
        signal,
      });
    } catch (error) {
      throw notFound(error, `file ${id}`);
    }
  }
}

/** Reads an `OpenAIFile` answer; throws when it has no id. */
export function parseFile(raw: unknown): OpenAIFile {
  const record =
    typeof raw === 'object' && raw !== null ? (raw as Record<string, unknown>) : undefined;
  if (!record || typeof record.id !== 'string' || record.id === '') {
    throw new MalformedResponseError('the server answered the upload without a file id');
  }
  return {
    id: record.id,
    bytes: typeof record.bytes === 'number' ? record.bytes : undefined,
    filename: typeof record.filename === 'string' ? record.filename : undefined,
    purpose: typeof record.purpose === 'string' ? record.purpose : undefined,
  };
}
