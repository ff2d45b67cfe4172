// The HTTP floor for row 3, with no CLI at all:
//   node bench/floor.mjs undici|http URL COUNT CONCURRENCY FILE
// sends COUNT copies of one small-image request (the file read and base64-encoded once), at
// most CONCURRENCY at a time over as many keep-alive connections, reading each streamed answer
// to its end: with undici (what this tool is built on) or with Node's own http module.
import { readFileSync } from 'node:fs';
import http from 'node:http';

const [client, url, count, concurrency, file] = process.argv.slice(2);
const body = Buffer.from(
  JSON.stringify({
    model: 'gpt-4o-2024-08-06',
    stream: true,
    stream_options: { include_usage: true },
    messages: [
      {
        role: 'user',
        content: [
          { type: 'text', text: 'What is in this image?' },
          {
            type: 'image_url',
            image_url: { url: `data:image/png;base64,${readFileSync(file).toString('base64')}` },
          },
        ],
      },
    ],
  }),
);
const headers = {
  'content-type': 'application/json',
  'content-length': String(body.length),
  authorization: 'Bearer k',
};

async function viaUndici() {
  const { Agent, request } = await import('undici');
  const dispatcher = new Agent({ connections: Number(concurrency) });
  return {
    async send() {
      const response = await request(url, { method: 'POST', body, headers, dispatcher });
      if (response.statusCode !== 200) throw new Error(`HTTP ${response.statusCode}`);
      await response.body.text();
    },
    close: () => dispatcher.close(),
  };
}

function viaHttp() {
  const agent = new http.Agent({ keepAlive: true, maxSockets: Number(concurrency) });
  return {
    send: () =>
      new Promise((resolve, reject) => {
        const req = http.request(url, { method: 'POST', headers, agent }, (res) => {
          if (res.statusCode !== 200) reject(new Error(`HTTP ${res.statusCode}`));
          res.resume();
          res.on('end', resolve);
        });
        req.on('error', reject);
        req.end(body);
      }),
    close: () => agent.destroy(),
  };
}

const { send, close } = client === 'http' ? viaHttp() : await viaUndici();
let left = Number(count);
async function worker() {
  while (left-- > 0) await send();
}
await Promise.all(Array.from({ length: Number(concurrency) }, worker));
await close();
