// Every misuse throws an OpError at the op boundary whose message names the
// op and the shapes involved, and leaves no tensor behind.
import t from 'tap';
import * as C from '@largo/core';
import { memory, tensor, OpError } from '@largo/core';

/** Asserts `fn` throws an OpError starting with `op:` that mentions every fragment (shapes, dtypes...). */
function expectOpError(t: Tap, fn: () => unknown, op: string, fragments: string[], what: string): void {
  let err: unknown = null;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  if (!(err instanceof OpError)) {
    t.fail(`${what}: expected an OpError, got ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`);
    return;
  }
  t.ok(err.message.startsWith(`${op}: `), `${what}: names the op (${err.message})`);
  for (const f of fragments) t.ok(err.message.includes(f), `${what}: mentions ${f}`);
}
type Tap = { ok(v: unknown, m: string): boolean; fail(m: string): boolean };

const x23 = tensor([
  [1, 2, 3],
  [4, 5, 6],
]);
const x3 = tensor([1, 2, 3]);
const i3 = tensor([1, 2, 3], [3], 'int32');

t.test('mismatched shapes', async (t) => {
  expectOpError(t, () => C.add(x23, tensor([1, 2, 3, 4])), 'add', ['[2, 3]', '[4]'], 'add');
  expectOpError(t, () => C.mul(tensor([1, 2]), x23), 'mul', ['[2]', '[2, 3]'], 'mul');
  expectOpError(t, () => C.less(x23, tensor([[1], [2], [3]])), 'less', ['[2, 3]', '[3, 1]'], 'comparison');
  expectOpError(t, () => C.where(tensor([1, 0]), x23, 0), 'where', ['[2]', '[2, 3]'], 'where');
  expectOpError(t, () => C.concat([x23, tensor([1, 2])], 0), 'concat', ['[2, 3]', '[2]'], 'concat rank');
  expectOpError(
    t,
    () =>
      C.concat(
        [
          x23,
          tensor([
            [1, 2],
            [3, 4],
          ]),
        ],
        0,
      ),
    'concat',
    ['[2, 3]', '[2, 2]'],
    'concat sizes',
  );
  expectOpError(t, () => C.stack([x23, x3]), 'stack', ['[2, 3]', '[3]'], 'stack');
  expectOpError(t, () => C.broadcastTo(x23, [3, 3]), 'broadcastTo', ['[2, 3]', '[3, 3]'], 'broadcastTo');
  expectOpError(t, () => C.indexAdd(x23, 0, i3, [4, 4]), 'indexAdd', ['[2, 3]', '[4, 4]'], 'indexAdd source');
});

t.test('wrong rank', async (t) => {
  expectOpError(t, () => C.transpose(x3), 'transpose', ['[3]'], 'transpose of a vector');
  expectOpError(t, () => C.permute(x23, [0]), 'permute', ['[2, 3]'], 'permute too short');
  expectOpError(t, () => C.permute(x23, [0, 0]), 'permute', ['[2, 3]'], 'permute repeated axis');
  expectOpError(t, () => C.slice(x23, [0], [1]), 'slice', ['[2, 3]'], 'slice begin length');
  expectOpError(t, () => C.pad(x23, [[1, 1]]), 'pad', ['[2, 3]'], 'pad pairs');
  expectOpError(t, () => C.concat([tensor(1), tensor(2)]), 'concat', ['[]'], 'concat of scalars');
  expectOpError(
    t,
    () => C.indexSelect(x23, 0, tensor([[0]], [1, 1], 'int32')),
    'indexSelect',
    ['[1, 1]'],
    'indexSelect 2-d indices',
  );
});

t.test('negative padding and bad attributes', async (t) => {
  expectOpError(
    t,
    () =>
      C.pad(x23, [
        [0, 0],
        [-1, 2],
      ]),
    'pad',
    ['[2, 3]', '-1'],
    'negative padding',
  );
  expectOpError(
    t,
    () =>
      C.pad(x23, [
        [0, 0],
        [0.5, 0],
      ]),
    'pad',
    ['[2, 3]'],
    'fractional padding',
  );
  expectOpError(t, () => C.clamp(x23, 2, 1), 'clamp', ['min 2 > max 1'], 'clamp bounds');
  expectOpError(t, () => C.arange(0, 1, 0), 'arange', ['step'], 'arange step');
  expectOpError(t, () => C.arange(0, NaN), 'arange', ['finite', 'NaN'], 'arange NaN stop');
  expectOpError(t, () => C.arange(0, Infinity), 'arange', ['finite', 'Infinity'], 'arange infinite stop');
  expectOpError(t, () => C.zeros([2, -3]), 'full', ['[2, -3]'], 'negative dim');
});

t.test('dtype mismatch', async (t) => {
  expectOpError(t, () => C.concat([x3, i3]), 'concat', ['float32 [3]', 'int32 [3]'], 'concat');
  expectOpError(t, () => C.engine().assign(x3, i3), 'assign', ['int32 [3]', 'float32 [3]'], 'assign');
  expectOpError(t, () => C.indexSelect(x23, 1, tensor([0, 1])), 'indexSelect', ['float32', '[2]'], 'float indices');
  expectOpError(t, () => C.log(i3), 'log', ['int32'], 'float-only unary on int');
  expectOpError(t, () => C.variance(i3), 'variance', ['int32'], 'variance of int');
  expectOpError(t, () => C.upcast('add', 'uint8', 'bogus' as C.DType), 'add', ['uint8', 'bogus'], 'upcast');
});

t.test('use of a disposed tensor', async (t) => {
  const d = tensor([[1, 2]]);
  d.dispose();
  expectOpError(t, () => C.add(d, x3), 'add', ['disposed', '[1, 2]'], 'first operand');
  expectOpError(t, () => C.add(x3, d), 'add', ['disposed', '[1, 2]'], 'second operand');
  expectOpError(t, () => C.exp(d), 'exp', ['disposed', '[1, 2]'], 'unary');
  expectOpError(t, () => C.sum(d), 'sum', ['disposed', '[1, 2]'], 'reduction');
  expectOpError(t, () => C.reshape(d, [2]), 'reshape', ['disposed', '[1, 2]'], 'reshape');
  expectOpError(t, () => C.concat([x3, d]), 'concat', ['disposed', '[1, 2]'], 'concat');
  expectOpError(t, () => d.dataSync(), 'dataSync', ['disposed', '[1, 2]'], 'dataSync');
  expectOpError(t, () => d.item(), 'item', ['disposed'], 'item');
  const di = tensor([0], [1], 'int32');
  di.dispose();
  expectOpError(t, () => C.indexSelect(x23, 0, di), 'indexSelect', ['disposed', '[1]'], 'disposed indices');
  t.rejects(d.data(), { name: 'OpError', message: /^data: use of a disposed tensor/ });
});

t.test('bad axes', async (t) => {
  expectOpError(t, () => C.sum(x23, 2), 'sum', ['axis 2', '[2, 3]'], 'sum axis too large');
  expectOpError(t, () => C.max(x23, -3), 'max', ['axis -3', '[2, 3]'], 'max axis too negative');
  expectOpError(t, () => C.mean(x23, [0, 1.5]), 'mean', ['axis 1.5', '[2, 3]'], 'fractional axis');
  expectOpError(t, () => C.argmax(x23, 2), 'argmax', ['axis 2', '[2, 3]'], 'argmax');
  expectOpError(t, () => C.sum(tensor(1), 1), 'sum', ['axis 1', '[]'], 'scalar axis 1');
  expectOpError(t, () => C.concat([x23, x23], 2), 'concat', ['axis 2', '[2, 3]'], 'concat axis');
  expectOpError(t, () => C.squeeze(x23, 0), 'squeeze', ['[2, 3]'], 'squeeze of a non-1 axis');
  expectOpError(t, () => C.indexSelect(x23, 2, [0]), 'indexSelect', ['axis 2', '[2, 3]'], 'indexSelect axis');
  expectOpError(t, () => C.transpose(x23, 0, 5), 'transpose', ['axis 5', '[2, 3]'], 'transpose axis');
});

t.test('bad reshape', async (t) => {
  expectOpError(t, () => C.reshape(x23, [4]), 'reshape', ['[2, 3]', '[4]'], 'size mismatch');
  expectOpError(t, () => C.reshape(x23, [-1, -1]), 'reshape', ['[-1, -1]'], 'two -1');
  expectOpError(t, () => C.reshape(x23, [4, -1]), 'reshape', ['[2, 3]', '[4, -1]'], '-1 does not divide');
  expectOpError(t, () => C.reshape(x23, [2, 3.5]), 'reshape', ['[2, 3.5]'], 'fractional dim');
  expectOpError(t, () => C.squeeze(x23, 3), 'squeeze', ['[2, 3]'], 'squeeze axis');
});

t.test('slice out of range', async (t) => {
  expectOpError(t, () => C.slice(x23, [0, 2], [1, 2]), 'slice', ['[0, 2]', '[1, 2]', '[2, 3]'], 'end past the dim');
  expectOpError(t, () => C.slice(x23, [3, 0]), 'slice', ['[2, 3]'], 'begin past the dim');
  expectOpError(t, () => C.slice(x23, [-3, 0]), 'slice', ['[2, 3]'], 'negative begin too far');
  expectOpError(t, () => C.slice(x23, [0, 0], [1, -2]), 'slice', ['[2, 3]'], 'negative size');
});

t.test('indexSelect / indexAdd index out of range', async (t) => {
  expectOpError(t, () => C.indexSelect(x23, 1, [0, 3]), 'indexSelect', ['index 3', '[2, 3]'], 'index = dim');
  expectOpError(
    t,
    () => C.indexSelect(x23, 0, tensor([-1], [1], 'int32')),
    'indexSelect',
    ['index -1', '[2, 3]'],
    'negative index',
  );
  expectOpError(
    t,
    () => C.indexAdd(tensor([1, 2]), 0, tensor([0, 5], [2], 'int32'), [3]),
    'indexAdd',
    ['index 5', '[3]'],
    'indexAdd index',
  );
  // A host list is validated before Int32Array would turn 1.5 into 1 and NaN into 0.
  expectOpError(
    t,
    () => C.indexSelect(x23, 1, [0, 1.5]),
    'indexSelect',
    ['index 1.5', 'not an integer', '[2, 3]'],
    'fractional host index',
  );
  expectOpError(t, () => C.indexSelect(x23, 1, [NaN]), 'indexSelect', ['index NaN', '[2, 3]'], 'NaN host index');
});

t.test('errors leak nothing', async (t) => {
  const base = memory();
  for (const f of [
    () => C.indexSelect(x23, 1, [0, 9]),
    () => C.add(x23, tensor([1, 2])),
    () => C.where(tensor([1, 0]), x23, 0),
    () => C.mul(tensor([1, 2]), 0.5),
    () => C.stack([x23, x3]),
  ]) {
    try {
      C.tidy(f as () => C.Tensor).dispose();
    } catch {
      /* expected for all but one */
    }
  }
  t.same(memory(), base);
  // Outside any scope: a failing op must not leave the scalar it made for a number behind.
  const c = tensor([1, 0]);
  const before = memory();
  t.throws(() => C.where(c, x23, 0), { name: 'OpError' });
  t.throws(() => C.add(C.reshape(x23, [3, 2]), tensor([1, 2, 3])), { name: 'OpError' });
  t.throws(() => C.indexSelect(x23, 1, [7]), { name: 'OpError' });
  t.same(memory().tensors, before.tensors + 2, 'only the two tensors made by the test itself remain');
});
