// Golden token ids from the official Hugging Face tokenizers library (npm
// tokenizers@0.23.2, the Rust implementation) for dotsocr's tokenizer tests.
//
//   node make_golden.mjs NODE_MODULES TOKENIZER_JSON N_RANDOM SEED > golden.jsonl
//
// One JSON object per line: {"name", "text", "ids", "decoded", "decoded_skip",
// "nfc"}; "decoded" is HF decode without skipping special tokens, "nfc" is
// JavaScript's own String.prototype.normalize("NFC") of the text.
import { createRequire } from 'module';
import path from 'path';

const [nodeModules, tokenizerPath, nRandomArg, seedArg] = process.argv.slice(2);
const require = createRequire(path.join(path.resolve(nodeModules), 'x.js'));
const { Tokenizer } = require('tokenizers');
const tok = Tokenizer.fromFile(tokenizerPath);
const nRandom = parseInt(nRandomArg || '10000', 10);
let seed = parseInt(seedArg || '1', 10) >>> 0;

function rand() { // mulberry32
  seed = (seed + 0x6D2B79F5) >>> 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const pick = (a) => a[Math.floor(rand() * a.length)];

// ---- docs/model.md §10.1 prompts, verbatim
const LAYOUT_ALL = `Please output the layout information from the PDF image, including each layout element's bbox, its category, and the corresponding text content within the bbox.

1. Bbox format: [x1, y1, x2, y2]

2. Layout Categories: The possible categories are ['Caption', 'Footnote', 'Formula', 'List-item', 'Page-footer', 'Page-header', 'Picture', 'Section-header', 'Table', 'Text', 'Title'].

3. Text Extraction & Formatting Rules:
    - Picture: For the 'Picture' category, the text field should be omitted.
    - Formula: Format its text as LaTeX.
    - Table: Format its text as HTML.
    - All Others (Text, Title, etc.): Format their text as Markdown.

4. Constraints:
    - The output text must be the original text from the image, with no translation.
    - All layout elements must be sorted according to human reading order.

5. Final Output: The entire output must be a single JSON object.
`;
const LAYOUT_ONLY = "Please output the layout information from this PDF image, including each layout's bbox and its category. The bbox should be in the format [x1, y1, x2, y2]. The layout categories for the PDF document include ['Caption', 'Footnote', 'Formula', 'List-item', 'Page-footer', 'Page-header', 'Picture', 'Section-header', 'Table', 'Text', 'Title']. Do not output the corresponding text. The layout result should be in JSON format.";
const OCR = 'Extract the text content from this image.';
const GROUNDING = 'Extract text from the given bounding box on the image (format: [x1, y1, x2, y2]).\nBounding Box:\n';

const curated = [
  ['prompt_layout_all_en', LAYOUT_ALL],
  ['prompt_layout_only_en', LAYOUT_ONLY],
  ['prompt_ocr', OCR],
  ['prompt_grounding_ocr', GROUNDING + '[163, 241, 1536, 705]'],
  ['template_layout_all', '<|user|><|img|>' + '<|imgpad|>'.repeat(16) + '<|endofimg|>' + LAYOUT_ALL + '<|endofuser|><|assistant|>'],
  ['template_ocr', '<|user|><|img|><|imgpad|><|imgpad|><|imgpad|><|imgpad|><|endofimg|>' + OCR + '<|endofuser|><|assistant|>'],
  ['special_adjacent', '<|endoftext|><|endofassistant|>[PAD][SEP]<|im_start|>x<|im_end|><tool_call></tool_call><|fim_prefix|>'],
  ['special_partial', '<|imgpa <|img| |img|> <|endofimg <|user|x <<|user|>> [PA [SEP'],
  ['hello', "Hello, world! It's 2024."],
  ['empty', ''],
  ['cjk', '中文文档解析：表格、公式与版面分析。日本語のテキスト、カタカナ、ひらがな。한국어 문서 인식 테스트입니다.'],
  ['arabic', 'مرحبا بالعالم! هذا نص عربي مع أرقام ١٢٣ و 456.'],
  ['hebrew', 'שלום עולם, זהו טקסט בעברית עם ניקוד: שָׁלוֹם.'],
  ['devanagari', 'नमस्ते दुनिया। यह हिंदी पाठ है, संयुक्ताक्षर क्ष त्र ज्ञ।'],
  ['thai', 'สวัสดีชาวโลก นี่คือข้อความภาษาไทย ๑๒๓'],
  ['emoji', 'Emoji: 👍🏽 👩‍💻 👨‍👩‍👧‍👦 🇫🇷🇯🇵 ❤️ ☺︎ 🧑🏿‍🔬 1️⃣'],
  ['combining', 'e\u0301 a\u0308 o\u0302\u0323 n\u0303 A\u030A \u1100\u1161\u11A8 café vs cafe\u0301 Å Å'],
  ['latex', '$$\\frac{a}{b} = \\sum_{i=1}^{n} x_i^2 \\quad \\text{where } \\alpha \\in \\mathbb{R}$$ and \\( E = mc^2 \\), \\begin{align} x &= y \\\\ z &= w \\end{align}'],
  ['html_table', '<table><thead><tr><th>Name</th><th>Value</th></tr></thead><tbody><tr><td>α</td><td>0.125</td></tr><tr><td></td><td></td></tr></tbody></table>'],
  ['json_layout', '[{"bbox": [163, 241, 1536, 705], "category": "Text", "text": "The quick brown fox."}, {"bbox": [12, 7, 90, 30], "category": "Page-header", "text": "Vol. 3"}, {"bbox": [1, 2, 3, 4], "category": "Picture"}]'],
  ['whitespace_runs', '   leading\n\n\ntrailing   \t\t\n  \r\n\r\n    indented\u00a0nbsp\u3000ideographic  \n'],
  ['only_spaces', '          '],
  ['only_newlines', '\n\n\n\n'],
  ['contractions', "I'm you're he's they've we'll it'd DON'T WE'RE She'S 'tis"],
  ['digits', '1234567890 3.14159 1,000,000 ¹²³ ½ ٣ ５６'],
  ['repeat_dots', '.'.repeat(200) + '_'.repeat(100) + '-'.repeat(50)],
  ['long_word', 'a'.repeat(3000)],
  ['markdown', '# Title\n\n## Section 1.2\n\n- item one\n- item **two** with `code`\n\n> quote\n\n| a | b |\n|---|---|\n| 1 | 2 |'],
  ['controls', 'tab\there\u0000nul\u0007bell\u001besc\u007fdel\u0085nel'],
];

// ---- random strings built from these pieces
const words = ['the', 'The', ' layout', 'document', 'Table', 'Formula', 'Section-header', 'Page-footer', 'bbox',
  'café', 'naïve', 'Straße', 'Ελληνικά', 'русский', 'язык', '中文', '表格', '公式', '日本語', 'カタカナ', '한국어',
  'مرحبا', 'עברית', 'नमस्ते', 'ไทย', 'Tiếng Việt', 'Ω', 'ﬁ', 'ǅ', 'İstanbul', 'ß', 'Æther', 'x²', 'H₂O', '∑', '∫', '≤', '→',
  "'s", "'RE", "'ll", "n't", '2024', '0', '42', '3.5', '-7', '1e-6', '½', '①', '⑩', 'Ⅻ'];
const puncts = ['.', ',', '!', '?', ';', ':', '...', '…', '—', '–', '-', '_', '___', '(', ')', '[', ']', '{', '}', '"', "'", '“', '”', '«', '»',
  '、', '。', '，', '：', '·', '•', '@', '#', '$', '%', '&', '*', '/', '\\', '|', '<', '>', '=', '+', '~', '^', '`'];
const markup = ['<td>', '</td>', '<tr>', '</tr>', '<table>', '</table>', '<br>', '<sup>2</sup>', '&nbsp;', '\\frac{1}{2}',
  '\\alpha', '\\mathbf{x}', '$', '$$', '\\[', '\\]', '^{2}', '_{i}', '\\\\', '{"bbox": [', '], "category": "', '", "text": "', '"}', '**', '##', '- '];
const specials = ['<|imgpad|>', '<|img|>', '<|endofimg|>', '<|user|>', '<|endofuser|>', '<|assistant|>', '<|endoftext|>',
  '<|endofassistant|>', '[PAD]', '[SEP]', '<tool_call>', '<|fim_pad|>', '<|im_start|>', '<|vision_start|>', '<|imgrowend|>'];
const spaces = [' ', '  ', '   ', '\t', '\n', '\n\n', '\r\n', ' \n', '\u00a0', '\u3000', '\u2009', '\u200b', '\u2028', '\u0085', '\u000b'];
const combining = ['\u0301', '\u0300', '\u0308', '\u0303', '\u0327', '\u0323', '\u0302', '\u030a', '\u0335', '\u20dd', '\u0951'];
const emoji = ['👍', '🏽', '👩', '\u200d', '💻', '🇫', '🇷', '❤', '\ufe0f', '🧑', '🔬', '😀', '🎉', '⭐', '🙏🏿'];
const ranges = [[0x20, 0x7e], [0xa0, 0x24f], [0x370, 0x3ff], [0x400, 0x4ff], [0x590, 0x5ff], [0x600, 0x6ff], [0x900, 0x97f],
  [0xe00, 0xe7f], [0x1100, 0x11ff], [0x2000, 0x206f], [0x2190, 0x22ff], [0x3040, 0x30ff], [0x4e00, 0x9fa5], [0xac00, 0xd7a3],
  [0xff00, 0xffef], [0x1f300, 0x1f5ff], [0x1f900, 0x1f9ff]];

function randomChar() {
  const [lo, hi] = pick(ranges);
  return String.fromCodePoint(lo + Math.floor(rand() * (hi - lo + 1)));
}

function randomString() {
  const n = 1 + Math.floor(rand() * 16);
  let s = '';
  for (let i = 0; i < n; i++) {
    const r = rand();
    if (r < 0.30) s += pick(words);
    else if (r < 0.42) s += pick(puncts);
    else if (r < 0.52) s += pick(markup);
    else if (r < 0.58) s += pick(specials);
    else if (r < 0.70) s += pick(spaces);
    else if (r < 0.76) s += pick(combining);
    else if (r < 0.82) s += pick(emoji);
    else if (r < 0.92) { const k = 1 + Math.floor(rand() * 6); for (let j = 0; j < k; j++) s += randomChar(); }
    else s += String(Math.floor(rand() * 100000));
    if (rand() < 0.35) s += ' ';
  }
  return s;
}

const cases = curated.slice();
for (let i = 0; i < nRandom; i++) cases.push(['random_' + i, randomString()]);
const out = [];
for (const [name, text] of cases) {
  const enc = await tok.encode(text, null, { addSpecialTokens: false });
  const ids = Array.from(enc.getIds());
  const decoded = await tok.decode(ids, false);
  const decodedSkip = await tok.decode(ids, true);
  out.push(JSON.stringify({ name, text, ids, decoded, decoded_skip: decodedSkip, nfc: text.normalize('NFC') }));
}
process.stdout.write(out.join('\n') + '\n');
