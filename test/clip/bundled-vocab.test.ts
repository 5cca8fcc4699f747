/**
 * The CLIP vocabulary shipped in assets/: identical to OpenAI's file, and the tokenizer of an open_clip model folder
 * that has only `open_clip_config.json` + safetensors (open_clip's default), through the library and the CLI.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tinyClipConfig } from '../../src/clip/config.ts';
import { loadClip } from '../../src/clip/load.ts';
import { writeRandomClip } from '../../src/clip/random.ts';
import { BPE_FILE, bundledBpePath, ClipTokenizer } from '../../src/clip/tokenizer.ts';
import { main } from '../../src/cli/main.ts';
import type { CliIO } from '../../src/cli/command.ts';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const root = mkdtempSync(join(tmpdir(), 'moeclip-bundled-vocab-'));
after(() => rmSync(root, { recursive: true, force: true }));

/** "a photo of a cat." in OpenAI CLIP's vocabulary (SOT, a, photo, of, a, cat, ., EOT). */
const CAT_IDS = [49406, 320, 1125, 539, 320, 2368, 269, 49407];

/** An open_clip folder of a tiny random CLIP with the tokenizer file removed. */
function folderWithoutVocab(name: string): string {
  const dir = join(root, name);
  writeRandomClip(dir, tinyClipConfig(), { layout: 'open_clip', seed: 5, bpePath: bundledBpePath(), perturbStd: 0.1 });
  unlinkSync(join(dir, BPE_FILE));
  return dir;
}

test('the bundled vocabulary is in assets/ and is OpenAI\'s file (sha256)', () => {
  const p = bundledBpePath();
  assert.equal(p, join(REPO, 'assets', BPE_FILE));
  const sha = createHash('sha256').update(readFileSync(p)).digest('hex');
  assert.equal(sha, '924691ac288e54409236115652ad4aa250f48203de50a9e4722a6ecd48d6804a');
  const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { files: string[] };
  assert.ok(pkg.files.includes('assets'), 'package.json "files" ships assets/');
});

test('an open_clip folder with only open_clip_config.json + safetensors loads with the bundled tokenizer', () => {
  const dir = folderWithoutVocab('oc');
  assert.deepEqual(readdirSync(dir).sort(), ['open_clip_config.json', 'open_clip_model.safetensors']);
  const m = loadClip(dir);
  assert.equal(m.layout, 'open_clip');
  assert.equal(m.tokenizer, ClipTokenizer.bundled());
  assert.equal(m.tokenizer.vocabSize, 49408);
  assert.deepEqual(m.tokenizer.encode('a photo of a cat.'), CAT_IDS.slice(1, -1));
  // an HF folder is never given a tokenizer it does not name
  assert.throws(() => ClipTokenizer.fromModelDir(dir), /no CLIP tokenizer files in .*vocab\.json \+ merges\.txt, or bpe_simple_vocab_16e6\.txt\.gz/);
});

test('moeclip encode runs on the open_clip folder without tokenizer files', async () => {
  const dir = folderWithoutVocab('oc-cli');
  let out = '';
  let err = '';
  const io: CliIO = { stdout: (t) => void (out += t), stderr: (t) => void (err += t), isTTY: false, env: {} };
  const code = await main(['encode', '--model', dir, '--text', 'a photo of a cat.', '--json', '--threads', '1'], io);
  assert.equal(code, 0, err);
  const j = JSON.parse(out) as { text_tokens: number[][]; text_embeds: number[][] };
  assert.deepEqual(j.text_tokens, [CAT_IDS]);
  assert.equal(j.text_embeds[0]!.length, 16);
  assert.ok(!existsSync(join(dir, BPE_FILE)), 'loading wrote nothing into the model folder');
});
