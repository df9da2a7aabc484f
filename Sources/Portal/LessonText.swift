import WebSupport

/// A lesson's text (the release's Markdown) as HTML: headings, paragraphs, bullet lists and bold,
/// everything else shown as written. Every character is escaped first, so a release cannot put
/// markup or script into the page; the release is signed, but the page must not depend on it.
enum LessonText {
    static func html(_ markdown: String) -> String {
        var out = ""
        var paragraph = [String]()
        var inList = false
        func flush() {
            if !paragraph.isEmpty { out += "<p>\(paragraph.joined(separator: " "))</p>\n"; paragraph = [] }
        }
        func closeList() { if inList { out += "</ul>\n"; inList = false } }
        for raw in markdown.split(separator: "\n", omittingEmptySubsequences: false) {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty { flush(); closeList(); continue }
            if let level = heading(line) {
                flush(); closeList()
                let text = String(line.drop(while: { $0 == "#" })).trimmingCharacters(in: .whitespaces)
                let tag = "h\(min(level + 1, 6))"  // the page's title is the h1
                out += "<\(tag)>\(inline(text))</\(tag)>\n"
            } else if line.hasPrefix("- ") || line.hasPrefix("* ") {
                flush()
                if !inList { out += "<ul>\n"; inList = true }
                out += "<li>\(inline(String(line.dropFirst(2))))</li>\n"
            } else {
                closeList()
                paragraph.append(inline(line))
            }
        }
        flush(); closeList()
        return out
    }

    private static func heading(_ line: String) -> Int? {
        let hashes = line.prefix(while: { $0 == "#" }).count
        guard (1...6).contains(hashes), line.dropFirst(hashes).first == " " else { return nil }
        return hashes
    }

    /// Escapes, then turns `**bold**` pairs into <strong>.
    private static func inline(_ text: String) -> String {
        let parts = Format.html(text).components(separatedBy: "**")
        guard parts.count >= 3 else { return parts.joined(separator: "**") }
        var out = ""
        for (i, p) in parts.enumerated() {
            if i == 0 { out += p; continue }
            let opening = i % 2 == 1
            // An unpaired last marker stays as written.
            if opening && i == parts.count - 1 { out += "**" + p; continue }
            out += (opening ? "<strong>" : "</strong>") + p
        }
        return out
    }
}

import Foundation
import Logging
import Merge
