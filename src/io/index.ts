/** File formats: safetensors, images, atomic writes. */
export * from './safetensors.ts';
export * from './image.ts';
export * from './atomic.ts';
export * from './json.ts';
