import Foundation
import WebSupport
import Store

/// Charts drawn on the server as inline SVG: no script, no web font, nothing fetched, so a page
/// works on a ministry network with no internet. Text uses the browser's default sans-serif.
enum Charts {
    static let target2025 = NationalReport.targets[0].share
    static let target2026 = NationalReport.targets[1].share

    /// Horizontal bars: each unit's certified share, with the 40 % and 100 % targets as lines.
    static func bars(_ rows: [(label: String, rate: Double)], title: String) -> String {
        let rowHeight = 18, labelWidth = 190, barWidth = 420, top = 22
        let height = top + rows.count * rowHeight + 8
        let width = labelWidth + barWidth + 70
        var svg = """
            <svg xmlns="http://www.w3.org/2000/svg" role="img" width="\(width)" height="\(height)" viewBox="0 0 \(width) \(height)" font-family="sans-serif" font-size="12"><title>\(Format.html(title))</title>
            """
        for (target, name) in [(target2025, "2025: 40 %"), (target2026, "2026: 100 %")] {
            let x = labelWidth + Int(Double(barWidth) * target)
            svg += "<line x1=\"\(x)\" y1=\"14\" x2=\"\(x)\" y2=\"\(height - 4)\" stroke=\"#b71c1c\" stroke-dasharray=\"4 3\"/>"
            svg += "<text x=\"\(x)\" y=\"11\" text-anchor=\"middle\" fill=\"#b71c1c\">\(Format.html(name))</text>"
        }
        for (i, row) in rows.enumerated() {
            let y = top + i * rowHeight
            let rate = min(max(row.rate, 0), 1)
            let w = Int((Double(barWidth) * rate).rounded())
            let color = rate >= target2026 ? "#2e7d32" : rate >= target2025 ? "#1565c0" : "#ef6c00"
            svg += "<text x=\"\(labelWidth - 6)\" y=\"\(y + 13)\" text-anchor=\"end\">\(Format.html(String(row.label.prefix(28))))</text>"
            svg += "<rect x=\"\(labelWidth)\" y=\"\(y + 3)\" width=\"\(w)\" height=\"\(rowHeight - 6)\" fill=\"\(color)\"/>"
            svg += "<text x=\"\(labelWidth + w + 4)\" y=\"\(y + 13)\">\(Format.html(Format.percent(rate)))</text>"
        }
        return svg + "</svg>"
    }

    /// The certified share day by day, with the two targets as horizontal lines.
    static func trend(_ points: [TrendPoint], title: String) -> String {
        let width = 640, height = 220, left = 44, right = 12, top = 12, bottom = 28
        let plotW = width - left - right, plotH = height - top - bottom
        var svg = """
            <svg xmlns="http://www.w3.org/2000/svg" role="img" width="\(width)" height="\(height)" viewBox="0 0 \(width) \(height)" font-family="sans-serif" font-size="12"><title>\(Format.html(title))</title>
            """
        func y(_ rate: Double) -> Int { top + plotH - Int((Double(plotH) * min(max(rate, 0), 1)).rounded()) }
        for tick in [0.0, 0.2, 0.4, 0.6, 0.8, 1.0] {
            svg += "<line x1=\"\(left)\" y1=\"\(y(tick))\" x2=\"\(left + plotW)\" y2=\"\(y(tick))\" stroke=\"#e0e0e0\"/>"
            svg += "<text x=\"\(left - 4)\" y=\"\(y(tick) + 4)\" text-anchor=\"end\">\(Int(tick * 100)) %</text>"
        }
        for target in [target2025, target2026] {
            svg += "<line x1=\"\(left)\" y1=\"\(y(target))\" x2=\"\(left + plotW)\" y2=\"\(y(target))\" stroke=\"#b71c1c\" stroke-dasharray=\"4 3\"/>"
        }
        // yyyy-MM-dd sorts as dates; x is the day number, so days without a snapshot keep their gap.
        let sorted = points.compactMap { p in Format.dayNumber(p.day).map { (day: $0, text: p.day, rate: p.certifiedShare) } }
            .sorted { $0.day < $1.day }
        if let first = sorted.first, let last = sorted.last {
            let span = max(last.day - first.day, 1)
            func x(_ day: Int) -> Int { left + Int(Double(plotW) * Double(day - first.day) / Double(span)) }
            let path = sorted.map { "\(x($0.day)),\(y($0.rate))" }.joined(separator: " ")
            svg += "<polyline fill=\"none\" stroke=\"#1565c0\" stroke-width=\"2\" points=\"\(path)\"/>"
            for p in sorted.count <= 60 ? sorted : [first, last] {
                svg += "<circle cx=\"\(x(p.day))\" cy=\"\(y(p.rate))\" r=\"2.5\" fill=\"#1565c0\"><title>\(Format.shortDay(p.text)): \(Format.percent(p.rate))</title></circle>"
            }
            svg += "<text x=\"\(left)\" y=\"\(height - 8)\">\(Format.shortDay(first.text))</text>"
            svg += "<text x=\"\(left + plotW)\" y=\"\(height - 8)\" text-anchor=\"end\">\(Format.shortDay(last.text))</text>"
        } else {
            svg += "<text x=\"\(left + plotW / 2)\" y=\"\(top + plotH / 2)\" text-anchor=\"middle\" fill=\"#757575\">Chưa có số liệu theo ngày</text>"
        }
        return svg + "</svg>"
    }
}
