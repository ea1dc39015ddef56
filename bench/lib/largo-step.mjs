// One LARGO training step of the main job (packages/largo/configs/phantom.json:
// 4 modalities, 16³ patches, batch 4, a 3-stage U-Net family with CP inner
// layers): the subsets' forwards and backwards, the full-modality guidance
// term, gradient clipping and the SGD update, on the active backend. Only
// ours: no peer library has LARGO.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as C from '@largo/core';
import { noGrad, zeroGrad } from '@largo/autograd';
import { resolveConfig, loadSegData, buildSegNet, SegTask, makeOptimizer, clipGradients, onCpu, placeOn } from 'largo';

const here = dirname(fileURLToPath(import.meta.url));

export function largoStepCase(configPath = join(here, '..', '..', 'packages', 'largo', 'configs', 'phantom.json')) {
  const cfg = resolveConfig(JSON.parse(readFileSync(configPath, 'utf8')), { methods: ['largo'] });
  const t = cfg.train;
  return {
    id: 'largo-train-step',
    kind: 'largo',
    label: `LARGO training step (phantom job, batch ${t.batchSize}, ${t.patchSize.join('×')})`,
    what:
      `one step of 'largo train --config phantom.json': per-sample subsets (${t.batchSize} samples, 4 modalities, 15 subsets), U-Net family ` +
      `(base ${cfg.model.baseFeatures}, depth ${cfg.model.depth}, CP rank ×${cfg.model.rankMultiplier}, deep supervision), region Dice + BCE, full-modality guidance, ` +
      `clip ${t.clipGradNorm}, SGD Nesterov ${t.momentum}. No peer implements LARGO.`,
    make: () => ({}),
    ours() {
      let data = null;
      // phantom data is generated in memory: synchronous enough for a bench (loadSegData is async only for files)
      const ready = loadSegData(cfg).then((d) => {
        data = d;
      });
      let net = null,
        task = null,
        opt = null,
        s = 0;
      const init = async () => {
        await ready;
        net = onCpu(() => buildSegNet(cfg, 'largo', data));
        task = onCpu(() => new SegTask(net, data, cfg, 'largo'));
        placeOn(net.namedParameters());
        opt = makeOptimizer(task.params, cfg, task.subsetParams);
      };
      const step = () => {
        const parts = task.lossStep(s++);
        noGrad(() => {
          for (const [, p] of task.params) if (!p.grad) p.grad = C.keep(C.zeros(p.shape, p.dtype));
          clipGradients(task.params, t.clipGradNorm);
          opt.step();
        });
        zeroGrad(task.params.map(([, p]) => p));
        return parts;
      };
      return {
        init,
        run: () => {
          for (const p of step()) p.dispose();
        },
        outputs: async () => {
          if (!task) await init();
          const parts = step();
          let loss = 0;
          for (const p of parts) {
            loss += (await p.data())[0];
            p.dispose();
          }
          return { loss: Float32Array.of(loss) };
        },
        dispose: () => {
          opt?.dispose();
          net?.dispose();
        },
      };
    },
  };
}
