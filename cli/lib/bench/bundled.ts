// The scenarios shipped in scenarios/*.yaml: what `pushctl bench --list`
// prints and the "no scenario" error names, one line each from the file's
// `description:`. Resolved against the package, not the working directory.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';

export const BUNDLED_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'scenarios');

export interface BundledScenario {
  name: string;
  description: string;
}

/** Every bundled scenario, by name; a file that does not parse still lists, saying so. */
export function bundledScenarios(dir = BUNDLED_DIR): BundledScenario[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .map((f) => {
      const name = f.slice(0, -'.yaml'.length);
      try {
        const raw = parseYaml(readFileSync(join(dir, f), 'utf8')) as { description?: unknown } | null;
        return { name, description: typeof raw?.description === 'string' ? raw.description.trim() : '(no description)' };
      } catch {
        return { name, description: '(not a valid scenario file)' };
      }
    });
}

/** The first sentence of a description, cut at a word to fit `width` columns. */
export function oneLine(text: string, width: number): string {
  const first = text.replace(/\s+/g, ' ').split(/(?<=\.)\s/)[0]!.replace(/\.$/, '');
  if (first.length <= width) return first;
  const cut = first.slice(0, width - 1);
  return `${cut.slice(0, Math.max(cut.lastIndexOf(' '), 1))}…`;
}

/** `name  description` lines, names padded to one column, each at most `width` columns. */
export function scenarioList(list: BundledScenario[], width = 80): string[] {
  const w = Math.max(0, ...list.map((s) => s.name.length));
  return list.map((s) => `  ${s.name.padEnd(w)}  ${oneLine(s.description, Math.max(20, width - w - 4))}`);
}

/** A SCENARIO argument: an existing file, else a bundled scenario's name. */
export function resolveScenario(arg: string, dir = BUNDLED_DIR): string {
  if (existsSync(arg)) return arg;
  const file = join(dir, `${arg}.yaml`);
  if (existsSync(file)) return file;
  const list = bundledScenarios(dir);
  throw new Error(`no scenario "${arg}": not a file, and not a bundled scenario${list.length ? `. Bundled (pushctl bench --list):\n${scenarioList(list).join('\n')}` : ''}`);
}
