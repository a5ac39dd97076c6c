/** Bytes in a mebibyte; every `*_mb` field in config and answers uses it. */
export const MB = 1024 * 1024;

/** Bytes → MB rounded to two decimals, the precision every `*_mb` field in an answer shows. */
export function toMb(bytes: number | null): number | null {
  return bytes === null ? null : Math.round((bytes / MB) * 100) / 100;
}
