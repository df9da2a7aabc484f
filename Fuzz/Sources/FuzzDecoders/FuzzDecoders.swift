import Foundation
import Merge
import Wire

/// One harness for both decoders of untrusted bytes. The first byte picks the decoder:
/// even → `ChangeCodec` (a batch body), odd → `WireCodec` (a two-frame message, split at the
/// position the second byte gives). Any input must decode or throw; a crash, trap or leak is a bug.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzDecoders(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let bytes = Array(UnsafeRawBufferPointer(start: start, count: count))
    guard let selector = bytes.first else { return 0 }
    let rest = Array(bytes.dropFirst())
    if selector % 2 == 0 {
        if let changes = try? ChangeCodec.decode(rest) {
            // What decodes must re-encode to the same bytes (the codec is canonical).
            precondition(ChangeCodec.encode(changes) == rest, "ChangeCodec is not canonical")
        }
    } else {
        let split = rest.isEmpty ? 0 : Int(rest[0]) % rest.count
        let body = Array(rest.dropFirst())
        let k = min(split, body.count)
        _ = try? WireCodec.decode([Data(body[..<k]), Data(body[k...])])
        _ = try? WireCodec.decode([Data(body)])
    }
    return 0
}
