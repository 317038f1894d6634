/**
 * The seed of every fast-check property (a vitest setup file): FC_SEED when set, to replay a failure; a
 * pinned one in CI, so a run fails or passes the same way twice; otherwise a new one per test file, so runs
 * on contributors' machines keep exploring new inputs. A failing test prints the seed to replay it with.
 */
import fc from "fast-check";
import { beforeEach } from "vitest";

const CI_SEED = 0x5eed_fc;

function chosenSeed(): number {
  const given = process.env.FC_SEED;
  if (given !== undefined && given !== "") {
    const seed = Number(given);
    if (!Number.isSafeInteger(seed)) throw new Error(`FC_SEED is not an integer: ${given}`);
    return seed;
  }
  if (process.env.CI) return CI_SEED;
  return (Math.random() * 0x1_0000_0000) | 0;
}

const seed = chosenSeed();
fc.configureGlobal({ ...fc.readConfigureGlobal(), seed });

beforeEach(({ onTestFailed }) => {
  onTestFailed(() => {
    console.error(`fast-check seed of this file: ${seed} (replay with FC_SEED=${seed})`);
  });
});
