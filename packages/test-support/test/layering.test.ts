// Layering: no import cycles in any package's src (value imports; a type-only
// import is erased), package arrows respected, no relative import across
// packages. The checker is tested on planted cases too.
import t from 'tap';
import { fileURLToPath } from 'node:url';
import { findCycles, importsOf, layeringProblems } from '@largo/test-support';

const root = fileURLToPath(new URL('../../..', import.meta.url));

t.test('the repository has no import cycles, no reverse arrows, no cross-package relative imports', async (t) => {
  const problems = layeringProblems(root);
  for (const p of problems) t.fail(p);
  if (problems.length === 0) t.pass('layering holds');
});

t.test('the checker finds planted cycles and reads every import form', async (t) => {
  t.same(
    findCycles(
      new Map([
        ['a', ['b']],
        ['b', ['c']],
        ['c', ['a']],
        ['d', ['a']],
      ]),
    ),
    [['a', 'b', 'c']],
    'a three-file cycle',
  );
  t.same(findCycles(new Map([['a', ['a']]])), [['a']], 'a self-import');
  t.same(
    findCycles(
      new Map([
        ['a', ['b']],
        ['b', []],
      ]),
    ),
    [],
    'a chain is fine',
  );
  const src = `import { x } from './a.js';\nimport type { Y } from '../b.js';\nexport * from './c.js';\nimport './d.js';\nconst m = await import('./e.js');\nexport { z } from '@largo/core';`;
  t.same(importsOf(src), [
    { spec: './a.js', typeOnly: false },
    { spec: '../b.js', typeOnly: true },
    { spec: './c.js', typeOnly: false },
    { spec: './d.js', typeOnly: false },
    { spec: './e.js', typeOnly: false },
    { spec: '@largo/core', typeOnly: false },
  ]);
});
