export { ChainKeyBuilder, KEY_LAYOUT_VERSION, escapeKeyPart } from './chain-key-builder.js';
export type { ChainKeyBuilderOptions, PtmIdentity } from './chain-key-builder.js';
export { namespacePrefix, escapeNamespace, NAMESPACE_DELIMITER } from './namespace.js';
