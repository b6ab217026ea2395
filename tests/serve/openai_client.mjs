// The official client's side of a test: the `openai` npm package sends each
// job of a list as the official dots.ocr / dots.mocr parser does
// (inference_with_vllm: a new client per request, the image as a PNG data URL
// in the first content part, "<|img|><|imgpad|><|endofimg|>" + prompt in the
// second, an optional system message), `concurrency` at a time.
//
// usage: node openai_client.mjs MODULES_DIR BASE_URL JOBS.json OUT.json CONCURRENCY [API_KEY]
// A job: {image, mime?, text, system?, model?, max_completion_tokens?,
//         temperature?, top_p?, seed?, stream?}; a result: {content,
//         finish_reason, usage} or {error, status}.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const [modules, baseURL, jobsPath, outPath, concurrencyArg, apiKey] = process.argv.slice(2);
const { default: OpenAI } = await import(pathToFileURL(join(modules, 'openai', 'index.mjs')).href);
const jobs = JSON.parse(readFileSync(jobsPath, 'utf8'));

async function one(job) {
  const client = new OpenAI({ apiKey: apiKey || '0', baseURL, maxRetries: job.max_retries ?? 2 });
  const b64 = readFileSync(job.image).toString('base64');
  const messages = [];
  if (job.system !== undefined) messages.push({ role: 'system', content: job.system });
  messages.push({
    role: 'user',
    content: [
      { type: 'image_url', image_url: { url: `data:${job.mime || 'image/png'};base64,${b64}` } },
      { type: 'text', text: job.text },
    ],
  });
  const req = { messages, model: job.model || 'model' };
  for (const k of ['max_completion_tokens', 'max_tokens', 'temperature', 'top_p', 'seed'])
    if (job[k] !== undefined) req[k] = job[k];
  try {
    if (job.stream) {
      const stream = await client.chat.completions.create({ ...req, stream: true, stream_options: { include_usage: true } });
      let content = '', finish = null, usage = null, chunks = 0;
      for await (const chunk of stream) {
        chunks++;
        if (chunk.usage) usage = chunk.usage;
        for (const c of chunk.choices) {
          if (c.delta && typeof c.delta.content === 'string') content += c.delta.content;
          if (c.finish_reason) finish = c.finish_reason;
        }
      }
      return { content, finish_reason: finish, usage, chunks };
    }
    const r = await client.chat.completions.create(req);
    return { content: r.choices[0].message.content, finish_reason: r.choices[0].finish_reason, usage: r.usage, model: r.model };
  } catch (e) {
    return { error: String(e.message || e), status: e.status ?? null };
  }
}

const results = new Array(jobs.length);
let next = 0;
async function worker() {
  while (next < jobs.length) {
    const i = next++;
    results[i] = await one(jobs[i]);
  }
}
const n = Math.max(1, parseInt(concurrencyArg || '1', 10));
await Promise.all(Array.from({ length: Math.min(n, jobs.length) }, worker));
writeFileSync(outPath, JSON.stringify(results));
