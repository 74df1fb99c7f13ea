export {
  type AddonName,
  type CapDevice,
  type CapHandle,
  type CapModule,
  loadAddon,
  loadCap,
  loadRawSocket,
  type RawSocket,
  type RawSocketModule,
} from './addons.js';
export {
  type CaptureSinkOptions,
  type CaptureWriter,
  DEFAULT_BATCH_BYTES,
} from './batched-record-writer.js';
export type { ByteOrder } from './byte-order.js';
export { failedCapHandleCount, linkTypeFromCapName } from './cap-open.js';
export {
  CaptureFileParser,
  CaptureReader,
  createCaptureParser,
  DEFAULT_READ_CHUNK_BYTES,
  detectCaptureFormat,
  type OpenCaptureWriterOptions,
  openCaptureWriter,
  parseCaptureBuffer,
  type ReadCaptureOptions,
  readCapture,
  writeCapture,
} from './capture-file.js';
export {
  CaptureFileError,
  type CaptureFileErrorFields,
  type CaptureFileErrorKind,
  type CaptureFormat,
} from './capture-file-error.js';
export { CaptureSinkStage, type CaptureSinkStageOptions } from './file-stages.js';
export {
  DEFAULT_MAX_IN_FLIGHT,
  FrameSink,
  type FrameSinkOptions,
  type InjectStats,
  RawIpv4Sink,
  type RawIpv4SinkOptions,
} from './inject.js';
export {
  combineFilters,
  DEFAULT_CAPTURE_BUFFER_SIZE,
  DEFAULT_QUEUE_LIMIT,
  LiveCapture,
  type LiveCaptureOptions,
  type LiveCaptureStats,
  listInterfaces,
  MAX_SNAP_LENGTH,
  nonPromiscuousClause,
} from './live-capture.js';
export {
  errorText,
  explainFailure,
  isPermissionError,
  LiveIoError,
  type LiveIoErrorKind,
  noSuchInterface,
  PRIVILEGE_HINT,
} from './live-io-error.js';
export {
  isPcapMagic,
  PCAP_DEFAULT_SNAPLEN,
  PCAP_MAGIC_MICROS,
  PCAP_MAGIC_NANOS,
  type PcapHeader,
  PcapParser,
  PcapWriter,
  type PcapWriterOptions,
} from './pcap.js';
export {
  isPcapngMagic,
  type PcapngInterface,
  type PcapngInterfaceOptions,
  PcapngParser,
  PcapngWriter,
  type PcapngWriterOptions,
} from './pcapng.js';
export {
  type CaptureParser,
  type CaptureParserOptions,
  DEFAULT_MAX_RECORD_BYTES,
} from './record-stream-parser.js';
