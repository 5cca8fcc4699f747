/**
 * `moeclip encode --model DIR [--image PATH]... [--text STR]... [--json]` — L2-normalised CLIP embeddings of
 * images and texts, plus the texts' token ids (without padding, with SOT/EOT).
 */
import { parseCli, parseThreads } from '../args.ts';
import type { Command } from '../command.ts';
import { UsageError } from '../command.ts';
import { ClipModel, matrixRows } from '../../clip/clip.ts';
import { loadClip } from '../../clip/load.ts';
import { readImage } from '../../io/image.ts';

const USAGE = `usage: moeclip encode --model DIR [--image PATH]... [--text STR]... [--json] [--threads N]

Encodes images and texts with a CLIP model folder (Hugging Face layout: config.json + model.safetensors +
vocab.json/merges.txt; or open_clip layout: open_clip_config.json + *.safetensors + the BPE vocabulary).
Embeddings are the projected features, L2-normalised. Repeat --image and --text for several inputs.

  --model DIR     the model folder
  --image PATH    a PNG or JPEG file (repeatable)
  --text STR      a text (repeatable)
  --json          print {"image_embeds": [[...]], "text_embeds": [[...]], "text_tokens": [[...]]}
  --threads N     ONNX Runtime threads (default: all cores)`;

const encode: Command = {
  summary: 'Print CLIP embeddings of images and texts',
  usage: USAGE,
  async run(argv, io) {
    const values = parseCli(
      argv,
      {
        model: { type: 'string' },
        image: { type: 'string', multiple: true, default: [] },
        text: { type: 'string', multiple: true, default: [] },
        json: { type: 'boolean', default: false },
        threads: { type: 'string' },
      },
      USAGE,
    );
    if (values.model === undefined) throw new UsageError(`--model DIR is required\n\n${USAGE}`);
    const imagePaths = values.image;
    const texts = values.text;
    if (imagePaths.length === 0 && texts.length === 0) throw new UsageError(`give at least one --image or --text\n\n${USAGE}`);
    const threads = parseThreads(values.threads);

    const loaded = loadClip(values.model);
    for (const w of loaded.warnings) io.stderr(`warning: ${w}\n`);
    const images = await Promise.all(imagePaths.map((p) => readImage(p)));
    const model = await ClipModel.fromParts(loaded, threads !== undefined ? { threads } : {});
    try {
      const imageEmbeds = matrixRows(await model.encodeImages(images));
      const textEmbeds = matrixRows(await model.encodeTexts(texts));
      const tokens = model.tokenize(texts);
      if (values.json) {
        io.stdout(JSON.stringify({ image_embeds: imageEmbeds, text_embeds: textEmbeds, text_tokens: tokens }) + '\n');
      } else {
        const head = (v: number[]) => v.slice(0, 4).map((x) => x.toFixed(4)).join(', ');
        io.stdout(`model ${values.model}: embedding dim ${model.config.embedDim}\n`);
        imagePaths.forEach((p, i) => io.stdout(`image ${p}: [${head(imageEmbeds[i]!)}, ...]\n`));
        texts.forEach((t, i) => io.stdout(`text ${JSON.stringify(t)}: tokens [${tokens[i]!.join(' ')}] → [${head(textEmbeds[i]!)}, ...]\n`));
      }
    } finally {
      await model.close();
    }
    return 0;
  },
};
export default encode;
