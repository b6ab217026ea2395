// llama_check.mjs - llama.cpp itself (node-llama-cpp's prebuilt CPU build)
// on our GGUF files. Usage: node llama_check.mjs NODE_MODULES COMMAND ...
//   tokenize LM.gguf STRINGS.jsonl   one JSON string a line -> ids a line
//   logprobs LM.gguf 1,2,3           log-probabilities after the last id (JSON array)
//   types FILE.gguf                  {tensor name: ggml type} as llama.cpp reads them
//   template LM.gguf                 its tokenizer.chat_template (JSON string or null)
//   version                          the llama.cpp build it carries
import {createRequire} from "node:module";
import fs from "node:fs";
import path from "node:path";
import readline from "node:readline";

const [modules, cmd, ...args] = process.argv.slice(2);
const nlc = await import(path.join(modules, "node-llama-cpp", "dist", "index.js"));

if (cmd === "template") {
    const info = await nlc.readGgufFileInfo(args[0]);
    console.log(JSON.stringify(info.metadata?.tokenizer?.chat_template ?? null));
    process.exit(0);
}
if (cmd === "types") {
    const info = await nlc.readGgufFileInfo(args[0], {readTensorInfo: true});
    const out = {};
    for (const t of info.tensorInfo ?? []) out[t.name] = t.ggmlType;
    console.log(JSON.stringify(out));
    process.exit(0);
}
const llama = await nlc.getLlama({gpu: false, build: "never", logLevel: "error"});
if (cmd === "version") {
    console.log(JSON.stringify({llamaCpp: llama.llamaCppRelease ?? null, buildType: llama.buildType}));
    process.exit(0);
}
const model = await llama.loadModel({modelPath: args[0]});
if (cmd === "tokenize") {
    const rl = readline.createInterface({input: fs.createReadStream(args[1]), crlfDelay: Infinity});
    const lines = [];
    for await (const line of rl) {
        if (!line) continue;
        lines.push(JSON.stringify(Array.from(model.tokenize(JSON.parse(line), true))));
    }
    process.stdout.write(lines.join("\n") + "\n");
} else if (cmd === "logprobs") {
    const ids = args[1].split(",").map(Number);
    const ctx = await model.createContext({contextSize: 512, threads: 1});
    const seq = ctx.getSequence();
    const items = [...ids.slice(0, -1), [ids[ids.length - 1], {generateNext: {probabilities: true}}]];
    const res = await seq.controlledEvaluate(items);
    const probs = res[res.length - 1].next.probabilities;
    const n = model.fileInfo.metadata?.qwen2?.vocab_size ?? model.tokens.length ?? probs.size;
    const out = new Array(probs.size);
    for (const [id, p] of probs) out[id] = Math.log(Math.max(p, 1e-45));
    console.log(JSON.stringify(out));
    void n;
} else {
    console.error("unknown command " + cmd);
    process.exit(2);
}
void createRequire;
