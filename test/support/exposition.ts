// Reading a Prometheus text exposition in tests: one sample's value by its series name.

/** The value of one sample of the exposition (labels in the exposition's order), or undefined. */
export function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}
