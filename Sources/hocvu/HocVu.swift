@main struct HocVu { static func main() {} }
