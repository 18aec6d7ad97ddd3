// Setting keys in a configuration text while keeping its comments and layout
// (how `slapos node register` and `configure local` fill slapos.cfg.example,
// as the reference substitutes its template). Pure: text in, text out.

export type KeyValues = Record<string, Record<string, string>>;

const SECTION = /^\s*\[([^\]]+)\]\s*$/;

/**
 * Each [section] key is set on its first line in that section, active
 * (`key = …`) or commented out (`#key = …`, uncommented then); a key the
 * section lacks is added at the section's end; a missing section is appended.
 * Later duplicates of a set key in the section are commented out.
 */
export function setKeys(text: string, values: KeyValues): string {
  const lines = text.split('\n');
  const pending = new Map(Object.entries(values).map(([section, keys]) => [section, new Map(Object.entries(keys))]));
  const done = new Set<string>();
  const out: string[] = [];
  let section: string | undefined;
  const flush = () => {
    const keys = section === undefined ? undefined : pending.get(section);
    if (!keys) return;
    // Inserted before the blank lines and comments that end the section.
    let at = out.length;
    while (at > 0 && /^\s*(#.*)?$/.test(out[at - 1] ?? '')) at -= 1;
    const added = [...keys.entries()].filter(([key]) => !done.has(`${section}\0${key}`)).map(([key, value]) => `${key} = ${value}`);
    out.splice(at, 0, ...added);
    pending.delete(section as string);
  };
  for (const line of lines) {
    const header = SECTION.exec(line);
    if (header) {
      flush();
      section = header[1]?.trim();
      out.push(line);
      continue;
    }
    const keys = section === undefined ? undefined : pending.get(section);
    const match = /^\s*(#\s*)?([A-Za-z0-9_.-]+)\s*=/.exec(line);
    const key = match?.[2];
    if (keys && key !== undefined && keys.has(key)) {
      const id = `${section}\0${key}`;
      if (!done.has(id)) {
        out.push(`${key} = ${keys.get(key) ?? ''}`);
        done.add(id);
        continue;
      }
      if (match?.[1] === undefined) {
        out.push(`#${line}`);
        continue;
      }
    }
    out.push(line);
  }
  flush();
  for (const [name, keys] of pending) {
    if (out.length > 0 && out[out.length - 1] !== '') out.push('');
    out.push(`[${name}]`, ...[...keys.entries()].map(([key, value]) => `${key} = ${value}`));
  }
  return out.join('\n');
}
