/**
 * Command-line options of the benchmarks: `--name value` options, `--name` switches and positional arguments.
 * (bench/lib/ is not a benchmark entry: tools/device/bundle.mjs bundles the files directly in bench/.)
 */
export class BenchArgs {
  private readonly taken = new Set<number>();
  constructor(private readonly argv: string[] = process.argv.slice(2)) {}

  /** Whether the switch `name` (e.g. '--mip') is given. */
  flag(name: string): boolean {
    return this.argv.includes(name);
  }

  /** The value after option `name`, or `def` when the option is absent; an option without a value is an error. */
  str(name: string, def: string): string;
  str(name: string): string | undefined;
  str(name: string, def?: string): string | undefined {
    const i = this.argv.indexOf(name);
    if (i < 0) return def;
    if (i + 1 >= this.argv.length) throw new Error(`${name}: expected a value`);
    this.taken.add(i + 1);
    return this.argv[i + 1];
  }

  /** The value of option `name` as a number, or `def`. */
  num(name: string, def: number): number {
    const v = this.str(name);
    return v === undefined ? def : Number(v);
  }

  /** The first argument that is neither an option nor the value of one read so far (read the options first). */
  positional(): string | undefined {
    return this.argv.find((a, i) => !a.startsWith('--') && !this.taken.has(i));
  }
}
