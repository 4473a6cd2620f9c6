/**
 * preview.png: rendered views composed into one grid image with sharp, written atomically.
 */
import sharp from 'sharp';
import { FaceG2EError } from '../errors';
import { writeAtomic, type OutputBatch } from './atomic';
import { sharpOf, toImage8, type ImageInput } from './image';

export interface GridOptions {
  /** Columns of the grid. Default: all images in one row. */
  columns?: number;
  /** Pixels between cells and around the grid. Default 0. */
  gap?: number;
  /** Background (gaps, and cells smaller than the largest image), RGB in [0, 255]. Default white. */
  background?: [number, number, number];
}

/** Layout of a grid: cell size (the largest image) and each image's top-left corner (images centred in cells). */
export function gridLayout(sizes: Array<{ width: number; height: number }>, options: GridOptions = {}) {
  const n = sizes.length;
  if (n === 0) throw new FaceG2EError('E_INVALID_ARGUMENT', 'grid: expected at least one image');
  const columns = options.columns ?? n;
  if (!Number.isInteger(columns) || columns < 1) throw new FaceG2EError('E_INVALID_ARGUMENT', `grid columns: expected an integer >= 1, got ${columns}`);
  const gap = options.gap ?? 0;
  if (!Number.isInteger(gap) || gap < 0) throw new FaceG2EError('E_INVALID_ARGUMENT', `grid gap: expected an integer >= 0, got ${gap}`);
  const cols = Math.min(columns, n);
  const rows = Math.ceil(n / cols);
  const cellW = Math.max(...sizes.map((s) => s.width));
  const cellH = Math.max(...sizes.map((s) => s.height));
  const width = cols * cellW + (cols + 1) * gap;
  const height = rows * cellH + (rows + 1) * gap;
  const cells = sizes.map((s, i) => {
    const r = Math.floor(i / cols);
    const c = i % cols;
    return { left: gap + c * (cellW + gap) + Math.floor((cellW - s.width) / 2), top: gap + r * (cellH + gap) + Math.floor((cellH - s.height) / 2) };
  });
  return { width, height, rows, columns: cols, cellWidth: cellW, cellHeight: cellH, cells };
}

/** Compose images into a grid; returns PNG bytes. */
export async function composeGridPng(images: ImageInput[], options: GridOptions = {}): Promise<Buffer> {
  const i8 = images.map((im, i) => toImage8(im, `preview ${i}`));
  const layout = gridLayout(i8, options);
  const [r, g, b] = options.background ?? [255, 255, 255];
  const tiles = await Promise.all(i8.map((im) => sharpOf(im).png({ compressionLevel: 0 }).toBuffer()));
  return sharp({ create: { width: layout.width, height: layout.height, channels: 3, background: { r, g, b } } })
    .composite(tiles.map((input, i) => ({ input, left: layout.cells[i].left, top: layout.cells[i].top })))
    .png({ compressionLevel: 6 })
    .toBuffer();
}

/** Write a grid of images as a PNG, atomically. */
export async function writeGridPng(file: string, images: ImageInput[], options: GridOptions = {}): Promise<void> {
  await writeAtomic(file, await composeGridPng(images, options));
}

export async function stageGridPng(batch: OutputBatch, name: string, images: ImageInput[], options: GridOptions = {}): Promise<string> {
  return batch.add(name, await composeGridPng(images, options));
}
