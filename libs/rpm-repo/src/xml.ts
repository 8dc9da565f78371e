// How every reader of repodata parses XML: as XML 1.0 does. fast-xml-parser decodes only the
// five predefined entities by default and leaves character references (`&#xFC;`, which
// createrepo_c writes for non-ASCII file names) as text; its `htmlEntities` setting decodes
// them but also HTML's named entities, which XML does not have. The decoder below (the parser's
// own, @nodable/entities) decodes the five entities and every character reference, leaves other
// names as written, and refuses a reference to NUL.
import { EntityDecoder } from '@nodable/entities';
import type { X2jOptions } from 'fast-xml-parser';

/** Parser options for XML 1.0 entity and character reference decoding; spread into XMLParser's options. */
export function xmlDecoding(): Pick<X2jOptions, 'processEntities' | 'htmlEntities' | 'entityDecoder'> {
  return {
    processEntities: true,
    htmlEntities: false,
    // One decoder per parser: it keeps per-document state (DOCTYPE entities, expansion counts).
    entityDecoder: new EntityDecoder({
      namedEntities: null,
      numericAllowed: true,
      ncr: { xmlVersion: 1.0, onNCR: 'allow', nullNCR: 'throw' },
      // Bounds for DOCTYPE-defined entities (a billion laughs), as the parser's defaults.
      limit: { maxTotalExpansions: 1000, maxExpandedLength: 100_000, applyLimitsTo: 'external' },
    }),
  };
}
