// One ordering for every sorted thing this library writes: Unicode code point order, which is
// UTF-8 byte order and Python's str order (productmd sorts with Python). JS's default `<` compares
// UTF-16 code units, which disagrees once astral characters meet U+E000..U+FFFF; the fix-up below
// moves surrogates above the rest of the BMP so the two orders agree.

const rank = (u: number) => (u >= 0xd800 && u <= 0xdfff ? u + 0x2000 : u >= 0xe000 ? u - 0x800 : u);

/** Compares by code point (= UTF-8 bytes = Python's `sorted`). Use as `arr.sort(byteOrder)`. */
export function byteOrder(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return rank(x) - rank(y);
  }
  return a.length - b.length;
}

/** Sorted copy without duplicates. */
export const sortedUnique = (xs: Iterable<string>): string[] => [...new Set(xs)].sort(byteOrder);
