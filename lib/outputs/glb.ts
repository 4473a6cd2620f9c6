/**
 * head.glb: a binary glTF 2.0 file built with glTF-Transform (@gltf-transform/core): one mesh with positions,
 * normals, UVs and indices (vertices split at UV seams, since glTF has one index buffer), a PBR metallic-roughness
 * material whose base colour is the texture, embedded as PNG. Written atomically.
 *
 * glTF's UV origin is the top-left corner of the image, so v is flipped from the OBJ convention of MeshData.
 * glTF's unit is the metre: pass `scale` to convert the model's units (e.g. 0.01 for centimetres).
 */
import { Document, NodeIO } from '@gltf-transform/core';
import { FaceG2EError } from '../errors';
import { writeAtomic, type OutputBatch } from './atomic';
import { encodePng, type ImageInput } from './image';
import { splitAtUvSeams, type MeshData } from './mesh';

export interface GlbOptions {
  /** Multiply positions by this (glTF is in metres). Default 1. */
  scale?: number;
  /** Names of the mesh/node and material. Default 'head'. */
  name?: string;
  /** PBR roughness of the material. Default 0.7. */
  roughness?: number;
  /** PBR metalness. Default 0. */
  metallic?: number;
  /** Extra fields for the asset's `extras` (e.g. the prompt and seed). */
  extras?: Record<string, unknown>;
  /** Already-encoded PNG of the texture (skips encoding `texture` again). */
  texturePng?: Uint8Array;
}

/** Build the glTF document (exposed for tests and for callers that add to it). */
export async function buildGlbDocument(mesh: MeshData, texture: ImageInput | undefined, options: GlbOptions = {}): Promise<Document> {
  const scale = options.scale ?? 1;
  if (!(scale > 0) || !Number.isFinite(scale)) throw new FaceG2EError('E_INVALID_ARGUMENT', `glb scale: expected a positive number, got ${scale}`);
  if (texture && !mesh.uvs) throw new FaceG2EError('E_INVALID_ARGUMENT', 'mesh: a texture needs uvs and uvTri');
  const split = splitAtUvSeams(mesh);
  const name = options.name ?? 'head';

  const doc = new Document();
  doc.getRoot().getAsset().generator = 'faceg2e-native';
  if (options.extras) doc.getRoot().getAsset().extras = { ...options.extras };
  const buffer = doc.createBuffer();
  const positions = scale === 1 ? split.positions : split.positions.map((x) => x * scale);
  const prim = doc
    .createPrimitive()
    .setAttribute('POSITION', doc.createAccessor('POSITION').setType('VEC3').setArray(positions).setBuffer(buffer))
    .setAttribute('NORMAL', doc.createAccessor('NORMAL').setType('VEC3').setArray(split.normals).setBuffer(buffer));
  if (split.uvs) {
    const uv = new Float32Array(split.uvs.length);
    for (let i = 0; i < uv.length; i += 2) {
      uv[i] = split.uvs[i];
      uv[i + 1] = 1 - split.uvs[i + 1];
    }
    prim.setAttribute('TEXCOORD_0', doc.createAccessor('TEXCOORD_0').setType('VEC2').setArray(uv).setBuffer(buffer));
  }
  const n = split.positions.length / 3;
  const indices = n <= 0xffff ? Uint16Array.from(split.indices) : split.indices;
  prim.setIndices(doc.createAccessor('indices').setType('SCALAR').setArray(indices).setBuffer(buffer));

  const material = doc
    .createMaterial(name)
    .setBaseColorFactor([1, 1, 1, 1])
    .setMetallicFactor(options.metallic ?? 0)
    .setRoughnessFactor(options.roughness ?? 0.7)
    .setDoubleSided(false);
  if (texture || options.texturePng) {
    const png = options.texturePng ?? (await encodePng(texture!, 'texture'));
    const tex = doc.createTexture('baseColor').setImage(new Uint8Array(png.buffer, png.byteOffset, png.byteLength)).setMimeType('image/png');
    material.setBaseColorTexture(tex);
  }
  prim.setMaterial(material);
  const gmesh = doc.createMesh(name).addPrimitive(prim);
  const node = doc.createNode(name).setMesh(gmesh);
  const scene = doc.createScene('scene').addChild(node);
  doc.getRoot().setDefaultScene(scene);
  return doc;
}

/** Encode the head as GLB bytes. */
export async function encodeGlb(mesh: MeshData, texture?: ImageInput, options: GlbOptions = {}): Promise<Uint8Array> {
  const doc = await buildGlbDocument(mesh, texture, options);
  return new NodeIO().writeBinary(doc);
}

/** Write the head as a .glb file, atomically. */
export async function writeGlb(file: string, mesh: MeshData, texture?: ImageInput, options: GlbOptions = {}): Promise<void> {
  const bytes = await encodeGlb(mesh, texture, options);
  await writeAtomic(file, bytes);
}

/** Stage head.glb into a batch. */
export async function stageGlb(batch: OutputBatch, name: string, mesh: MeshData, texture?: ImageInput, options: GlbOptions = {}): Promise<string> {
  return batch.add(name, await encodeGlb(mesh, texture, options));
}
