import Foundation
import Logging
import Merge
import Hummingbird
import Release
import Sodium
import Synchronization
import WebSupport

/// Serves a release file from the chunk store with HTTP Range requests (a video seeks without
/// downloading what it skips). Chunk files are immutable once written, so each chunk is checked
/// against its BLAKE2b name the first time this process serves it, not on every request; a chunk
/// that fails the check is refused (500 with the reason in the log), never sent.
final class MediaResponder: Sendable {
    let chunks: ChunkStore
    private let verified = Mutex<Set<String>>([])

    init(chunks: ChunkStore) { self.chunks = chunks }

    static func contentType(_ path: String) -> String {
        switch (path as NSString).pathExtension.lowercased() {
        case "mp4", "m4v": "video/mp4"
        case "webm": "video/webm"
        case "ogv": "video/ogg"
        case "mp3": "audio/mpeg"
        case "ogg", "oga": "audio/ogg"
        case "wav": "audio/wav"
        case "pdf": "application/pdf"
        case "png": "image/png"
        case "jpg", "jpeg": "image/jpeg"
        case "gif": "image/gif"
        case "webp": "image/webp"
        case "md", "txt": "text/plain; charset=utf-8"
        default: "application/octet-stream"
        }
    }

    /// The kind of element a lesson page shows a file in.
    enum Kind { case text, video, audio, image, pdf, other }
    static func kind(_ path: String) -> Kind {
        let t = contentType(path)
        if t.hasPrefix("text/") { return .text }
        if t.hasPrefix("video/") { return .video }
        if t.hasPrefix("audio/") { return .audio }
        if t.hasPrefix("image/") { return .image }
        if t == "application/pdf" { return .pdf }
        return .other
    }

    /// A strong validator for the file's bytes: its chunk names, hashed.
    static func etag(_ file: Manifest.File) -> String {
        "\"" + Blake2b.hash(Data(file.chunks.map(\.hash).joined().utf8), outputLength: 16).hexString + "\""
    }

    /// - Parameters: the request's `Range`, `If-Range` and `If-None-Match` headers.
    func respond(_ file: Manifest.File, rangeHeader: String?, ifRange: String? = nil, ifNoneMatch: String? = nil, head: Bool = false) -> Response {
        var h = HTTPFields()
        h[.contentType] = Self.contentType(file.path)
        h[.acceptRanges] = "bytes"
        let etag = Self.etag(file)
        h[.eTag] = etag
        // A lesson's file keeps its address when a new release changes it: the browser may keep it
        // but asks each time (a 304 costs nothing), so a new release's video is never mixed with
        // the old one's bytes.
        h[.cacheControl] = "private, no-cache"
        if let ifNoneMatch, ifNoneMatch.split(separator: ",").contains(where: { $0.trimmingCharacters(in: .whitespaces) == etag || $0.trimmingCharacters(in: .whitespaces) == "*" }) {
            return Response(status: .notModified, headers: h)
        }
        // A resumed download of another version gets the whole new file, not a splice (RFC 9110 §13.1.5).
        let rangeHeader = ifRange == nil || ifRange == etag ? rangeHeader : nil
        h[.xContentTypeOptions] = "nosniff"
        // A file opened on its own (an SVG, a PDF) runs nothing and loads nothing.
        h[.contentSecurityPolicy] = "default-src 'none'; media-src 'self'; img-src 'self'; style-src 'unsafe-inline'; sandbox"
        let range: ByteRange
        let status: HTTPResponse.Status
        switch ByteRange.decide(rangeHeader, size: file.size) {
        case .unsatisfiable:
            h[.contentRange] = "bytes */\(file.size)"
            return Response(status: .rangeNotSatisfiable, headers: h)
        case .whole:
            guard file.size > 0 else { return Response(status: .ok, headers: h, body: .init(byteBuffer: ByteBuffer())) }
            (range, status) = (ByteRange(first: 0, last: file.size - 1), .ok)
        case .partial(let r):
            h[.contentRange] = "bytes \(r.first)-\(r.last)/\(file.size)"
            (range, status) = (r, .partialContent)
        }
        if head {
            h[.contentLength] = "\(range.count)"
            return Response(status: status, headers: h)
        }
        let pieces = Self.pieces(of: file, in: range)
        return Response(
            status: status, headers: h,
            body: ResponseBody(contentLength: range.count) { [self] writer in
                for p in pieces {
                    try await writer.write(try self.piece(p.hash, size: p.size, from: p.from, to: p.to))
                }
                try await writer.finish(nil)
            })
    }

    /// Which part of which chunk each piece of `range` comes from, in order.
    static func pieces(of file: Manifest.File, in range: ByteRange) -> [(hash: String, size: Int, from: Int, to: Int)] {
        var out = [(hash: String, size: Int, from: Int, to: Int)]()
        var offset = 0
        for c in file.chunks {
            defer { offset += c.size }
            let start = max(range.first, offset), end = min(range.last + 1, offset + c.size)
            guard start < end else {
                if offset > range.last { break }
                continue
            }
            out.append((c.hash, c.size, start - offset, end - offset))
        }
        return out
    }

    /// Bytes `from..<to` of a chunk, read straight into the buffer that is sent (one copy). A chunk
    /// not yet checked by this process is read whole and checked first.
    private func piece(_ hash: String, size: Int, from: Int, to: Int) throws -> ByteBuffer {
        if !verified.withLock({ $0.contains(hash) }) {
            let bytes = try chunks.readVerified(hash, size: size)
            verified.withLock { _ = $0.insert(hash) }
            return ByteBuffer(bytes: bytes[from..<to])
        }
        let path = chunks.filePath(hash)
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ChunkStoreError.io("cannot open chunk \(hash.prefix(16))… in \(chunks.directory): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var buffer = ByteBufferAllocator().buffer(capacity: to - from)
        let read = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: to - from) { raw in
            var done = 0
            while done < to - from {
                let n = pread(fd, raw.baseAddress! + done, to - from - done, off_t(from + done))
                if n <= 0 { break }
                done += n
            }
            return done
        }
        // A chunk file shorter than its manifest size was damaged after it was checked.
        guard read == to - from else { throw ChunkStoreError.corrupt("chunk \(hash.prefix(16))… in \(chunks.directory) is shorter than \(size) bytes") }
        return buffer
    }
}
