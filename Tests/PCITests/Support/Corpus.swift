import Foundation
@testable import PCI
import Testing

/// pciutils' dump corpus, read in place from `<package root>/../shared/testdata/pciutils`.
enum Corpus {
    /// The corpus folder, or `nil` when this checkout has no `shared/` beside it.
    static let directory: URL? = {
        let packageRoot = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let folder = packageRoot.deletingLastPathComponent().appendingPathComponent("shared/testdata/pciutils")
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder.path, isDirectory: &isDirectory), isDirectory.boolValue
        else { return nil }
        return folder
    }()

    static var isPresent: Bool { directory != nil }
    static let absentNote: Comment = "SKIPPED: the pciutils corpus (../shared/testdata/pciutils) is not beside this checkout"

    /// The dump files: every file that is neither a `.txt` companion nor the README.
    static let dumpNames: [String] = {
        guard let directory, let names = try? FileManager.default.contentsOfDirectory(atPath: directory.path) else {
            return []
        }
        return names.filter { !$0.hasSuffix(".txt") && $0 != "README.md" }.sorted()
    }()

    static func path(_ name: String) -> String { directory!.appendingPathComponent(name).path }

    static func dump(_ name: String) throws -> PCIDump { try PCIDump(contentsOfFile: path(name)) }

    static func text(_ name: String) throws -> String { try String(contentsOfFile: path(name), encoding: .utf8) }
}
