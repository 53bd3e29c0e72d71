/** Minimal `--flag value` / `--flag` / positional parsing shared by the subcommands; unknown flags are errors. */
export interface ParsedArgs {
  flags: Map<string, string[]>;
  positional: string[];
}

/** `spec` maps each accepted flag to whether it takes a value. */
export function parseArgs(args: readonly string[], spec: Record<string, boolean>): ParsedArgs {
  const flags = new Map<string, string[]>();
  const positional: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i] as string;
    if (!a.startsWith('--')) {
      positional.push(a);
      continue;
    }
    const [name, inline] = a.slice(2).split('=', 2) as [string, string | undefined];
    if (!(name in spec)) throw new Error(`unknown option --${name}`);
    let value = 'true';
    if (spec[name]) {
      value = inline ?? (args[++i] as string | undefined) ?? '';
      if (value === '') throw new Error(`--${name} needs a value`);
    }
    flags.set(name, [...(flags.get(name) ?? []), value]);
  }
  return { flags, positional };
}

export function flag(p: ParsedArgs, name: string): string | undefined {
  return p.flags.get(name)?.at(-1);
}
