/** Flags every command shares for what it prints. */
export interface OutputFlags {
  verbose?: boolean;
  debug?: boolean;
}

export function consoleLevel(flags: OutputFlags): 'warn' | 'info' | 'debug' {
  if (flags.debug === true) return 'debug';
  return flags.verbose === true ? 'info' : 'warn';
}
