/**
 * Why decoding stopped. Decoders never throw on packet bytes: they return one of these, naming the
 * layer, the kind of failure, the byte offset in the frame where the offending header (or field) starts,
 * and a sentence for humans.
 */
export type DecodeErrorKind = 'truncated' | 'malformed' | 'unsupported';

export interface DecodeError {
  layer: string;
  kind: DecodeErrorKind;
  /** Offset in the buffer handed to the decoder (for the parser: from the start of the frame). */
  offset: number;
  detail: string;
}

export function truncated(
  layer: string,
  offset: number,
  need: number,
  have: number,
  what = 'header',
): DecodeError {
  return {
    layer,
    kind: 'truncated',
    offset,
    detail: `${layer} ${what} needs ${need} bytes, ${have} available`,
  };
}

export function malformed(layer: string, offset: number, detail: string): DecodeError {
  return { layer, kind: 'malformed', offset, detail };
}

export function unsupported(layer: string, offset: number, detail: string): DecodeError {
  return { layer, kind: 'unsupported', offset, detail };
}
