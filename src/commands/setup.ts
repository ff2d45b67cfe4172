/**
 * `--save-key`: asks for an API key (without echo on a terminal, or reads it from a pipe) and
 * stores it in the config file, mode 0600. `--print-config`: the settings in effect, where
 * each comes from, the key redacted to its last four characters, the host it goes to, and
 * URLs without their secrets.
 */
import { redactKey, type Settings, type Sourced } from '../config.js';
import type { LoadedConfig } from '../config-file.js';
import { saveKey } from '../config-file.js';
import type { InStream } from '../deps.js';
import { ExitCode, InterruptedError, UsageError } from '../errors.js';
import { readStdinText } from '../input/images.js';
import { displayUrl, neutralize, safeJson } from '../output/guard.js';
import { PROVIDERS } from '../providers.js';
import type { RunContext } from './job.js';

export async function saveKeyCommand(
  file: string,
  profile: string | undefined,
  ctx: RunContext,
): Promise<number> {
  const { deps, reporter } = ctx;
  const key = deps.stdin.isTTY
    ? await readHidden(deps.stdin, (text) => deps.stderr.write(text))
    : (await readStdinText(deps.stdin)).trim();
  if (key === '') throw new UsageError('no key given; nothing was saved');
  if (/\s/.test(key))
    throw new UsageError('an API key is one word without spaces; nothing was saved');
  reporter.addSecret(key);
  await saveKey(file, key, profile).catch((error: unknown) => {
    throw new UsageError((error as Error).message);
  });
  reporter.line(
    `saved the key ${redactKey(key)} to ${file}${profile ? ` (profile ${profile})` : ''}, readable by you only`,
  );
  return ExitCode.OK;
}

/** The part of a terminal's input stream that reading a key needs. */
interface RawTerminal {
  setRawMode(mode: boolean): unknown;
  resume(): unknown;
  pause(): unknown;
  on(event: 'data', listener: (chunk: Buffer | string) => void): unknown;
  off(event: 'data', listener: (chunk: Buffer | string) => void): unknown;
}

/** Reads one line from a terminal with echo off. Ctrl-C cancels. */
function readHidden(stdin: InStream, write: (text: string) => unknown): Promise<string> {
  write('Paste your API key (it will not be shown), then press Enter: ');
  const stream = stdin as InStream & RawTerminal;
  return new Promise((resolve, reject) => {
    let key = '';
    const done = (error?: Error): void => {
      stream.setRawMode(false);
      stream.pause();
      stream.off('data', onData);
      write('\n');
      if (error) reject(error);
      else resolve(key.trim());
    };
    const onData = (chunk: Buffer | string): void => {
      for (const ch of chunk.toString()) {
        if (ch === '\r' || ch === '\n') return done();
        if (ch === '\u0003') return done(new InterruptedError());
        if (ch === '\u007f' || ch === '\b') key = key.slice(0, -1);
        else if (ch >= ' ') key += ch;
      }
    };
    stream.setRawMode(true);
    stream.resume();
    stream.on('data', onData);
  });
}

interface Row {
  setting: string;
  value: string | number | undefined;
  source: string;
}

/** The host a URL points at (with its port), or undefined when it is not a URL. */
function hostOf(text: string): string | undefined {
  try {
    return new URL(text).host;
  } catch {
    return undefined;
  }
}

export function configRows(
  settings: Settings,
  loaded: LoadedConfig,
  cacheDir: Sourced<string>,
): Row[] {
  const provider = PROVIDERS[settings.provider.value];
  const rows: Row[] = [
    {
      setting: 'config file',
      value: loaded.path,
      source: loaded.exists ? 'found' : 'not found; it is optional',
    },
    {
      setting: 'profile',
      value: settings.profile?.value ?? '(none)',
      source: settings.profile?.source ?? '',
    },
    {
      setting: 'provider',
      value: `${provider.name} (${provider.label})`,
      source: settings.provider.source,
    },
    {
      setting: 'baseUrl',
      value: displayUrl(settings.baseUrl.value),
      source: settings.baseUrl.source,
    },
    {
      setting: 'model',
      value: settings.model?.value ?? '(asked of the server)',
      source: settings.model?.source ?? '',
    },
    {
      setting: 'apiKey',
      value: settings.apiKey ? redactKey(settings.apiKey.value) : '(none)',
      source:
        settings.apiKey?.source ??
        [
          ...settings.keysNotSent,
          provider.needsKey ? 'set one with --save-key' : 'not needed',
        ].join('; '),
    },
    {
      setting: 'keySentTo',
      value: settings.apiKey
        ? (hostOf(settings.baseUrl.value) ?? '(not a valid base URL)')
        : '(no key is sent)',
      source: settings.apiKey ? 'the host of baseUrl' : '',
    },
    {
      setting: 'keyHeader',
      value: provider.keyHeader === 'api-key' ? 'api-key' : 'Authorization: Bearer',
      source: `provider ${provider.name}`,
    },
  ];
  if (settings.apiVersion)
    rows.push({
      setting: 'apiVersion',
      value: settings.apiVersion.value,
      source: settings.apiVersion.source,
    });
  rows.push({
    setting: 'detail',
    value: settings.detail?.value ?? 'auto',
    source: settings.detail?.source ?? 'default',
  });
  rows.push({
    setting: 'maxTokens',
    value: settings.maxTokens?.value ?? '(server default)',
    source: settings.maxTokens?.source ?? 'default',
  });
  const prices = Object.keys(settings.prices);
  if (prices.length > 0)
    rows.push({ setting: 'prices', value: prices.join(', '), source: 'config file' });
  const cacheOff = settings.cache?.value === false;
  rows.push({
    setting: 'cache',
    value: cacheOff ? 'off' : `on, ${cacheDir.value}`,
    source: cacheOff ? (settings.cache?.source ?? '') : cacheDir.source,
  });
  return rows;
}

export function printConfig(
  settings: Settings,
  loaded: LoadedConfig,
  json: boolean,
  cacheDir: Sourced<string>,
  ctx: RunContext,
): number {
  const rows = configRows(settings, loaded, cacheDir);
  if (json) {
    const out: Record<string, { value: string | number | undefined; source: string }> = {};
    for (const row of rows) out[row.setting] = { value: row.value, source: row.source };
    ctx.deps.stdout.write(`${safeJson(out, 2)}\n`);
    return ExitCode.OK;
  }
  const width = Math.max(...rows.map((r) => r.setting.length));
  const valueWidth = Math.min(60, Math.max(...rows.map((r) => String(r.value).length)));
  let text = '';
  for (const row of rows) {
    const value = neutralize(String(row.value));
    const source = neutralize(row.source);
    text += `${row.setting.padEnd(width)}  ${value.padEnd(valueWidth)}${source ? `  (${source})` : ''}\n`;
  }
  ctx.deps.stdout.write(text);
  return ExitCode.OK;
}
