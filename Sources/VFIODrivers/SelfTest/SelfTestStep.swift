import VFIOKit

/// One step of a sample driver's end-to-end check, as `vfiokit run` prints it.
public struct SelfTestStep: Sendable, CustomStringConvertible {
    public let name: String
    /// nil when the step does not apply (to this backend or device).
    public let passed: Bool?
    public let detail: String

    public var description: String {
        "\(passed.map { $0 ? "ok  " : "FAIL" } ?? "skip") \(name): \(detail)"
    }
}

/// Collects steps and reports each as it finishes.
final class SelfTestRecorder {
    private(set) var steps: [SelfTestStep] = []
    private let report: (SelfTestStep) -> Void

    init(report: @escaping (SelfTestStep) -> Void) { self.report = report }

    func record(_ name: String, _ passed: Bool?, _ detail: String) {
        let step = SelfTestStep(name: name, passed: passed, detail: detail)
        steps.append(step)
        report(step)
    }

    /// Runs `body`; a thrown error fails the step with the error's message.
    func check(_ name: String, _ body: () throws -> (Bool, String)) {
        do {
            let (ok, detail) = try body()
            record(name, ok, detail)
        } catch {
            record(name, false, "\(error)")
        }
    }
}
