/**
 * The candidate a misspelt name most likely meant, for "did you mean" hints: the nearest by
 * edit distance (letters inserted, deleted, replaced or swapped with a neighbour, ignoring
 * case), if it is near enough to be a typo; undefined otherwise, so an unrelated name gets no
 * guess.
 */
export function closestName(name: string, candidates: Iterable<string>): string | undefined {
  // One edit per four letters (at least one): "plna" → "plan", but not "owner" → "model".
  const limit = Math.max(1, Math.floor(name.length / 4));
  let best: { candidate: string; distance: number } | undefined;
  for (const candidate of candidates) {
    if (candidate === name) continue;
    const distance = editDistance(name.toLowerCase(), candidate.toLowerCase());
    if (distance <= limit && (!best || distance < best.distance)) best = { candidate, distance };
  }
  return best?.candidate;
}

/** `; did you mean "x"?` to append to a message about `name`, or an empty string when no candidate is close. */
export function didYouMean(name: string, candidates: Iterable<string>): string {
  const closest = closestName(name, candidates);
  return closest === undefined ? '' : `; did you mean ${JSON.stringify(closest)}?`;
}

/** Optimal string alignment distance (Levenshtein plus transpositions of neighbours). */
function editDistance(a: string, b: string): number {
  // Rows i-2, i-1 and i of the usual dynamic programme.
  let before: number[] = [];
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      current[j] = Math.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) current[j] = Math.min(current[j], before[j - 2] + 1);
    }
    before = previous;
    previous = current;
  }
  return previous[b.length];
}
