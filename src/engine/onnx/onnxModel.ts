/**
 * Builds ONNX models at run time: the subset of the ONNX schema (ModelProto, GraphProto,
 * NodeProto, AttributeProto, TensorProto, ValueInfoProto) that the engine's matrix products and
 * composite operations, and the tiny CLIP test fixtures, need. Field numbers follow onnx.proto.
 */
import { ProtoWriter } from './protobuf.js';

export type ElemType = 'float32' | 'uint8' | 'int8' | 'int32' | 'int64' | 'bool' | 'float64';

const ELEM_TYPE_CODE: Record<ElemType, number> = {
  float32: 1, uint8: 2, int8: 3, int32: 6, int64: 7, bool: 9, float64: 11,
};

/** A dimension is a fixed size or a symbolic name (dynamic). */
export type Dim = number | string;

export type AttrValue =
  | { kind: 'int'; value: number }
  | { kind: 'float'; value: number }
  | { kind: 'string'; value: string }
  | { kind: 'ints'; value: number[] }
  | { kind: 'floats'; value: number[] }
  | { kind: 'tensor'; value: InitTensor };

export const attr = {
  int: (value: number): AttrValue => ({ kind: 'int', value }),
  float: (value: number): AttrValue => ({ kind: 'float', value }),
  string: (value: string): AttrValue => ({ kind: 'string', value }),
  ints: (value: number[]): AttrValue => ({ kind: 'ints', value }),
  floats: (value: number[]): AttrValue => ({ kind: 'floats', value }),
  tensor: (value: InitTensor): AttrValue => ({ kind: 'tensor', value }),
};

export interface InitTensor {
  type: ElemType;
  dims: number[];
  data: Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array | Int8Array;
}

interface ValueSpec { name: string; type: ElemType; shape: Dim[] | null }
interface NodeSpec { op: string; inputs: string[]; outputs: string[]; attrs: Record<string, AttrValue>; domain: string; name: string }

function tensorProto(name: string, t: InitTensor): ProtoWriter {
  const w = new ProtoWriter();
  for (const d of t.dims) w.int(1, d);
  w.int(2, ELEM_TYPE_CODE[t.type]);
  w.string(8, name);
  w.bytes(9, new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  return w;
}

function valueInfo(v: ValueSpec): ProtoWriter {
  const tensorType = new ProtoWriter().int(1, ELEM_TYPE_CODE[v.type]);
  if (v.shape !== null) {
    const shape = new ProtoWriter();
    for (const d of v.shape) {
      const dim = new ProtoWriter();
      if (typeof d === 'number') dim.int(1, d);
      else dim.string(2, d);
      shape.message(1, dim);
    }
    tensorType.message(2, shape);
  }
  return new ProtoWriter().string(1, v.name).message(2, new ProtoWriter().message(1, tensorType));
}

function attributeProto(name: string, a: AttrValue): ProtoWriter {
  // AttributeProto: name=1, f=2, i=3, s=4, t=5, floats=7, ints=8, type=20.
  const w = new ProtoWriter().string(1, name);
  switch (a.kind) {
    case 'float': return w.float(2, a.value).int(20, 1);
    case 'int': return w.int(3, a.value).int(20, 2);
    case 'string': return w.string(4, a.value).int(20, 3);
    case 'tensor': return w.message(5, tensorProto('', a.value)).int(20, 4);
    case 'floats': for (const f of a.value) w.float(7, f); return w.int(20, 6);
    case 'ints': for (const i of a.value) w.int(8, i); return w.int(20, 7);
  }
}

/** Accumulates nodes, inputs, outputs and initializers, then serializes one ModelProto. */
export class GraphBuilder {
  private inputs: ValueSpec[] = [];
  private outputs: ValueSpec[] = [];
  private nodes: NodeSpec[] = [];
  private inits: { name: string; tensor: InitTensor }[] = [];
  private counter = 0;

  constructor(readonly name = 'graph') {}

  input(name: string, type: ElemType, shape: Dim[] | null): string {
    this.inputs.push({ name, type, shape });
    return name;
  }

  output(name: string, type: ElemType, shape: Dim[] | null): string {
    this.outputs.push({ name, type, shape });
    return name;
  }

  initializer(name: string, tensor: InitTensor): string {
    this.inits.push({ name, tensor });
    return name;
  }

  /** A float32 constant (scalar when dims is empty). */
  constFloat(values: number[] | Float32Array, dims: number[] = []): string {
    return this.initializer(this.fresh('c'), { type: 'float32', dims, data: Float32Array.from(values) });
  }

  constInt64(values: number[], dims: number[] = [values.length]): string {
    return this.initializer(this.fresh('ci'), { type: 'int64', dims, data: BigInt64Array.from(values.map(BigInt)) });
  }

  fresh(prefix = 't'): string {
    return `${prefix}_${this.counter++}`;
  }

  /** Adds a node; returns its (first) output name. Outputs default to fresh names. */
  node(op: string, inputs: string[], attrs: Record<string, AttrValue> = {}, outputs?: string[], domain = ''): string {
    const outs = outputs ?? [this.fresh(op.toLowerCase())];
    this.nodes.push({ op, inputs, outputs: outs, attrs, domain, name: this.fresh('n') });
    return outs[0]!;
  }

  /** Like `node` for operators with several outputs. */
  nodeMulti(op: string, inputs: string[], numOutputs: number, attrs: Record<string, AttrValue> = {}): string[] {
    const outs = Array.from({ length: numOutputs }, () => this.fresh(op.toLowerCase()));
    this.node(op, inputs, attrs, outs);
    return outs;
  }

  toBytes(opset = 17, irVersion = 8): Uint8Array {
    const graph = new ProtoWriter();
    for (const n of this.nodes) {
      const node = new ProtoWriter();
      for (const i of n.inputs) node.string(1, i);
      for (const o of n.outputs) node.string(2, o);
      node.string(3, n.name).string(4, n.op);
      for (const [k, v] of Object.entries(n.attrs)) node.message(5, attributeProto(k, v));
      if (n.domain) node.string(7, n.domain);
      graph.message(1, node);
    }
    graph.string(2, this.name);
    for (const i of this.inits) graph.message(5, tensorProto(i.name, i.tensor));
    for (const v of this.inputs) graph.message(11, valueInfo(v));
    for (const v of this.outputs) graph.message(12, valueInfo(v));
    const model = new ProtoWriter()
      .int(1, irVersion)
      .string(2, 'clap4clip')
      .message(7, graph)
      .message(8, new ProtoWriter().string(1, '').int(2, opset));
    return model.finish();
  }
}
