/** The bench's summary table: one row per figure, with its target and whether it was met. */

/** Scenario, figure, target, met. */
export type Row = [string, string, string, string];

export const mark = (ok: boolean) => (ok ? "met" : "MISSED");

/** The rows as aligned columns. */
export function formatRows(rows: Row[]): string {
  const widths = [0, 1, 2, 3].map((i) => Math.max(...rows.map((row) => row[i]?.length ?? 0)));
  return rows.map((row) => row.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join("  ")).join("\n");
}
