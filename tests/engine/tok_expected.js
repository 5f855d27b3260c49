// Expected ids for tests/integration/test_tokenizer_conformance.py from the
// Hugging Face tokenizers Node binding (`npm install tokenizers` outside the
// repository; never run in CI):
//   node tok_expected.js tokenizer.json texts.json > expected.json
// texts.json is a JSON array of strings; the output is {"texts", "ids"}.
const fs = require('fs');
const { Tokenizer } = require('tokenizers');

const tok = Tokenizer.fromFile(process.argv[2]);
const texts = JSON.parse(fs.readFileSync(process.argv[3], 'utf-8'));
(async () => {
  const ids = [];
  for (const t of texts)
    ids.push(Array.from((await tok.encode(t, null, { addSpecialTokens: false })).getIds()));
  process.stdout.write(JSON.stringify({ texts, ids }) + '\n');
})();
