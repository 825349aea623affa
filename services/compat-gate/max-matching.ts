/**
 * Maximum-cardinality bipartite matching (augmenting paths). Used to pair the subschemas of an old and
 * a new `oneOf`/`anyOf`/`allOf`: the change is compatible only if every subschema of the smaller side
 * can be paired with a distinct compatible subschema of the other.
 *
 * `edges[i]` lists the right-hand indices left index `i` may pair with, in order of preference.
 * Returns `match[i]` = the right index paired with left `i`, or -1.
 */
export function maximumMatching(leftCount: number, rightCount: number, edges: readonly (readonly number[])[]): number[] {
  const rightOwner = new Array<number>(rightCount).fill(-1);
  const match = new Array<number>(leftCount).fill(-1);

  const augment = (left: number, visited: boolean[]): boolean => {
    for (const right of edges[left] ?? []) {
      if (visited[right]) continue;
      visited[right] = true;
      const owner = rightOwner[right] ?? -1;
      if (owner === -1 || augment(owner, visited)) {
        rightOwner[right] = left;
        match[left] = right;
        return true;
      }
    }
    return false;
  };

  for (let left = 0; left < leftCount; left++) {
    augment(left, new Array<boolean>(rightCount).fill(false));
  }
  return match;
}
