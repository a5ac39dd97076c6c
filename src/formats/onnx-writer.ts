/**
 * Helpers that write ONNX models (protobuf ModelProto) node by node, for generated models. Format code only:
 * what a model computes is a recipe (src/demo/), or the one-node proof model below that the image provider
 * opens to check that onnxruntime works at all.
 */
import onnxProto from 'onnx-proto';

export const { onnx } = onnxProto;
/** TensorProto element types (FLOAT, INT32, INT64...). */
export const DT = onnx.TensorProto.DataType;
const AT = onnx.AttributeProto.AttributeType;
/** docs/runtimes.md "Model format": onnxruntime-node 1.30 runs IR 8 / opset 17 (Resize with an empty roi needs opset ≥ 13). */
export const ONNX_IR_VERSION = 8;
export const ONNX_OPSET = 17;

export type OnnxNode = onnxProto.onnx.INodeProto;
export type OnnxTensor = onnxProto.onnx.ITensorProto;
export type OnnxValueInfo = onnxProto.onnx.IValueInfoProto;
export type OnnxAttribute = onnxProto.onnx.IAttributeProto;
export type OnnxGraph = onnxProto.onnx.IGraphProto;
/** A fixed size, or a named dynamic axis ('batch'). */
export type Dim = number | string;

export function attrInt(name: string, i: number): OnnxAttribute {
  return { name, type: AT.INT, i };
}
export function attrInts(name: string, ints: number[]): OnnxAttribute {
  return { name, type: AT.INTS, ints };
}
export function attrString(name: string, s: string): OnnxAttribute {
  return { name, type: AT.STRING, s: Buffer.from(s, 'utf8') };
}

/** A node named after its first output, which is unique in a graph, so runtime errors name a findable node. */
export function node(opType: string, input: string[], output: string[], attribute: OnnxAttribute[] = []): OnnxNode {
  return { opType, input, output, attribute, name: `${opType}_${output[0]}` };
}

export function valueInfo(name: string, elemType: number, dims: Dim[]): OnnxValueInfo {
  return {
    name,
    type: {
      tensorType: {
        elemType,
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

export function floatInit(name: string, dims: number[], data: Float32Array): OnnxTensor {
  return { name, dims, dataType: DT.FLOAT, rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
}

export function int64Init(name: string, values: number[]): OnnxTensor {
  const data = BigInt64Array.from(values.map((v) => BigInt(v)));
  return { name, dims: [values.length], dataType: DT.INT64, rawData: new Uint8Array(data.buffer) };
}

export interface OnnxProducer {
  name: string;
  version: string;
}

/** The serialized model: one graph at IR 8 / opset 17 of the default domain. */
export function encodeModel(graph: OnnxGraph, name: string, producer: OnnxProducer): Uint8Array {
  const model = onnx.ModelProto.create({
    irVersion: ONNX_IR_VERSION,
    opsetImport: [{ domain: '', version: ONNX_OPSET }],
    producerName: producer.name,
    producerVersion: producer.version,
    graph: { ...graph, name },
  });
  return onnx.ModelProto.encode(model).finish();
}

/** A one-node Identity model (a few dozen bytes) that proves the ONNX runtime can create a session. */
export function identityModelBytes(): Uint8Array {
  return encodeModel(
    {
      input: [valueInfo('x', DT.FLOAT, [1])],
      output: [valueInfo('y', DT.FLOAT, [1])],
      node: [node('Identity', ['x'], ['y'])],
    },
    'identity',
    { name: 'modelplane', version: '1' },
  );
}
