import type { StepRunContext } from '../../engine/step-contract.js';

/** A slot mover's progress after each group: slots done of the total, keys moved, keys per second. */
export function reportSlotMoves(
  ctx: Pick<StepRunContext<unknown>, 'progress'>,
  started: number,
  done: number,
  total: number,
  keysMoved: number,
): void {
  const secs = (Date.now() - started) / 1000;
  ctx.progress(`moved ${done}/${total} slots, ${keysMoved} keys`, {
    unit: 'slots',
    done,
    total,
    keys: keysMoved,
    keysPerSec: secs > 0 ? Math.round(keysMoved / secs) : undefined,
  });
}
