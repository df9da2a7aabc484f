import ArgumentParser
import Foundation

extension HocVu {
    struct Keygen: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a node's identity (Ed25519) and transport (CURVE) keys; print the public halves.")

        @Option(help: "Directory for identity.key and transport.key (created 0700; files 0600).")
        var dir = "/etc/hocvu/keys"

        @Flag(help: "Replace existing keys (the node must then be enrolled again).")
        var force = false

        func run() throws {
            let keys = try KeyFiles.generate(into: dir, force: force)
            print(keys.publicText)
            print("\nGive these two public keys to the hub administrator for `hocvu hub enroll`.")
        }
    }
}
