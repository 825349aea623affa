/**
 * Debezium's include/exclude lists (`message.prefix.include.list`, ...): comma-separated regular
 * expressions, a comma inside one escaped as `\,`, each item trimmed, matched against the whole name and
 * case-insensitively (Debezium's `Predicates.includes`).
 */

/** The items of a comma-separated list, split at commas not escaped with a backslash. */
export function splitRegexList(text: string): string[] {
  const items: string[] = [];
  let current = '';
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (ch === '\\' && text[i + 1] === ',') {
      current += ',';
      i++;
    } else if (ch === ',') {
      items.push(current);
      current = '';
    } else current += ch;
  }
  items.push(current);
  return items.map((s) => s.trim()).filter((s) => s.length > 0);
}

/** The list's regular expressions, each anchored at both ends; throws naming the item that is not one. */
export function parseRegexList(text: string): RegExp[] {
  return splitRegexList(text).map((item) => {
    try {
      return new RegExp(`^(?:${item})$`, 'i');
    } catch (err) {
      throw new Error(`"${item}" is not a regular expression (${(err as Error).message})`);
    }
  });
}

/**
 * A name filter from an include list or an exclude list (at most one of them is set; neither: every
 * name passes), as Debezium builds it.
 */
export function regexListFilter(include: string | undefined, exclude: string | undefined): (name: string) => boolean {
  if (include !== undefined && include.trim() !== '') {
    const patterns = parseRegexList(include);
    return (name) => patterns.some((p) => p.test(name));
  }
  if (exclude !== undefined && exclude.trim() !== '') {
    const patterns = parseRegexList(exclude);
    return (name) => !patterns.some((p) => p.test(name));
  }
  return () => true;
}
