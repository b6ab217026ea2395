// Encodes the UTF-8 text on stdin with the official Hugging Face tokenizers
// (npm tokenizers@0.23.2) and prints the ids as a JSON list.
//   node hf_encode.mjs NODE_MODULES TOKENIZER_JSON < text
import { createRequire } from 'module';
import path from 'path';
import fs from 'fs';

const [nodeModules, tokenizerPath] = process.argv.slice(2);
const require = createRequire(path.join(path.resolve(nodeModules), 'x.js'));
const { Tokenizer } = require('tokenizers');
const tok = Tokenizer.fromFile(tokenizerPath);
const text = fs.readFileSync(0, 'utf8');
const enc = await tok.encode(text, null, { addSpecialTokens: false });
process.stdout.write(JSON.stringify(Array.from(enc.getIds())) + '\n');
