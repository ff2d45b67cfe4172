// The stand-in API for the benchmark, in its own process (the harness blocks on spawnSync).
// Answers POST /v1/chat/completions after `delayMs` (set over IPC), SSE or JSON as asked.
import http from 'node:http';

let delayMs = 0;
let requests = 0;
// Arrival times since the last `reset`, for the steady-state rate.
let first = 0;
let last = 0;
const sse =
  'data: {"id":"c1","model":"bench","choices":[{"index":0,"delta":{"content":"A small test image."},"finish_reason":null}]}\n\n' +
  'data: {"id":"c1","model":"bench","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n' +
  'data: {"id":"c1","model":"bench","choices":[],"usage":{"prompt_tokens":100,"completion_tokens":5,"total_tokens":105}}\n\n' +
  'data: [DONE]\n\n';
const json = JSON.stringify({
  id: 'c1',
  model: 'bench',
  choices: [
    {
      index: 0,
      message: { role: 'assistant', content: 'A small test image.' },
      finish_reason: 'stop',
    },
  ],
  usage: { prompt_tokens: 100, completion_tokens: 5, total_tokens: 105 },
});

const server = http.createServer((req, res) => {
  let head = '';
  req.on('data', (chunk) => {
    if (head.length < 300) head += chunk.toString('latin1', 0, 300);
  });
  req.on('end', () => {
    requests++;
    last = performance.now();
    if (requests === 1) first = last;
    const stream = /"stream":true/.test(head);
    setTimeout(() => {
      res.writeHead(200, { 'content-type': stream ? 'text/event-stream' : 'application/json' });
      res.end(stream ? sse : json);
    }, delayMs);
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => process.send({ port: server.address().port }));
process.on('message', (message) => {
  if (typeof message.delayMs === 'number') delayMs = message.delayMs;
  if (message.reset) requests = 0;
  process.send({ ack: true, requests, first, last });
});
process.on('disconnect', () => process.exit(0));
