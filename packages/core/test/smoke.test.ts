import t from 'tap';
import fc from 'fast-check';
import { add, tensor } from '@largo/core';
import { refBinary, REF_BINARY } from '@largo/core/reference';
import { compare, oracleCase, toRef, arbShapedValues, FC_RUNS } from './helpers/oracle.js';

t.test(oracleCase('add') + ' (smoke)', async (t) => {
  fc.assert(fc.property(arbShapedValues(0, 3, 4), ({ shape, values }) => {
    const a = tensor(values, shape);
    const r = compare(add(a, a), refBinary(toRef(a), toRef(a), REF_BINARY.add));
    a.dispose();
    return r === null;
  }), { numRuns: FC_RUNS });
  t.pass('ok');
});
