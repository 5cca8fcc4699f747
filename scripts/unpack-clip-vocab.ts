/**
 * Writes Hugging Face style `vocab.json` + `merges.txt` from OpenAI's `bpe_simple_vocab_16e6.txt.gz`.
 *
 *   node --import tsx scripts/unpack-clip-vocab.ts [path/to/bpe_simple_vocab_16e6.txt.gz] [out-dir]
 *
 * Defaults: ../shared/clip/bpe_simple_vocab_16e6.txt.gz (relative to the repository root) and .data/clip-vocab/.
 * The two files load with `ClipTokenizer.fromVocabMerges` / `fromModelDir` and give the same ids as the gz file.
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeFileAtomic } from '../src/io/atomic.ts';
import { ClipTokenizer } from '../src/clip/tokenizer.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const gz = process.argv[2] ?? join(root, '..', 'shared', 'clip', 'bpe_simple_vocab_16e6.txt.gz');
const outDir = process.argv[3] ?? join(root, '.data', 'clip-vocab');

const tok = ClipTokenizer.fromBpeGz(gz);
const { vocab, merges } = tok.exportVocabMerges();
writeFileAtomic(join(outDir, 'vocab.json'), JSON.stringify(vocab));
writeFileAtomic(join(outDir, 'merges.txt'), '#version: 0.2\n' + merges.join('\n') + '\n');
process.stderr.write(`wrote ${Object.keys(vocab).length} tokens and ${merges.length} merges to ${outDir}\n`);
