/**
 * @module worker/runtime/oci/mount-points
 * Mount points listed in a /proc/<pid>/mountinfo text (proc(5): field 5, octal-escaped). Pure.
 */

export function parseMountPoints(mountinfo: string): string[] {
  const points: string[] = [];
  for (const line of mountinfo.split('\n')) {
    const field = line.split(' ')[4];
    if (field !== undefined && field !== '') points.push(unescapeMountField(field));
  }
  return points;
}

/** mountinfo escapes space, tab, newline and backslash as three octal digits. */
export function unescapeMountField(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}
