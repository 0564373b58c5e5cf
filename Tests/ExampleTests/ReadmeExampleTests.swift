import DoorbellDriver
import Foundation
import Testing

/// The README's "Writing a driver" snippets are the example target's sources, and they run.
@Suite struct ReadmeExampleTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The ```swift blocks of one README section.
    static func snippets(inSection heading: String) throws -> [String] {
        let readme = try String(contentsOf: root.appendingPathComponent("README.md"), encoding: .utf8)
        let section = try #require(readme.components(separatedBy: "\n## ").first { $0.hasPrefix(heading) })
        return section.components(separatedBy: "```swift\n").dropFirst().map { $0.components(separatedBy: "\n```")[0] }
    }

    @Test func theSnippetsAreTheExampleSourcesWordForWord() throws {
        let snippets = try Self.snippets(inSection: "Writing a driver")
        let sources = try ["DoorbellDriver.swift", "OnTheMock.swift"].map {
            try String(contentsOf: Self.root.appendingPathComponent("Examples/DoorbellDriver/\($0)"), encoding: .utf8)
        }
        #expect(snippets.count == sources.count)
        for (snippet, source) in zip(snippets, sources) {
            #expect(snippet + "\n" == source, "README snippet differs from its example source")
        }
    }

    @Test func theExampleRunsOnTheMock() throws {
        #expect(try ringDoorbellOnTheMock() == 3)
    }
}
