import ArgumentParser
import CLIOutput
#if canImport(Glibc)
import Glibc
#endif

@main
struct VFIOKitCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vfiokit",
        abstract: "Userspace PCI drivers over VFIO and UIO.",
        version: BuildVersion.text,
        subcommands: [
            ListCommand.self,
            InfoCommand.self,
            BindCommand.self,
            UnbindCommand.self,
            InspectCommand.self,
            RunCommand.self,
            WorkerCommand.self,
            StatusCommand.self,
            SelfTestCommand.self,
            ContextCommand.self,
            ConformanceCommand.self,
            NVMeToolCommand.self,
        ])

    /// Parses and runs the subcommand. A usage error its `run()` finds (a `ValidationError`)
    /// ends with that subcommand's usage, as a parse error does, not the root's.
    static func main() async {
        // A parent that spawned us from a thread blocking signals (a Dispatch or Swift
        // concurrency worker does) passes that mask on; SIGTERM and SIGINT must reach the
        // commands that wait for them, so every signal starts unblocked, as for any daemon.
        var none = sigset_t()
        sigemptyset(&none)
        pthread_sigmask(SIG_SETMASK, &none, nil)
        let parsed: any ParsableCommand
        do { parsed = try parseAsRoot() } catch { exit(withError: error) }
        do {
            var command = parsed
            if var asyncCommand = command as? any AsyncParsableCommand { try await asyncCommand.run() } else { try command.run() }
        } catch let error as ValidationError {
            let subcommand = type(of: parsed)
            let name = (commandPath(to: subcommand) ?? ["vfiokit"]).joined(separator: " ")
            printError("Error: \(error.message)\nUsage: \(usageString(for: subcommand))\n  See '\(name) --help' for more information.")
            exit(withError: ExitCode.validationFailure)
        } catch {
            exit(withError: error)
        }
    }

    /// The names from `vfiokit` down to `target` ("vfiokit", "nvme", "read").
    static func commandPath(to target: any ParsableCommand.Type, from root: any ParsableCommand.Type = VFIOKitCommand.self) -> [String]? {
        let name = root.configuration.commandName ?? String(describing: root).lowercased()
        if root == target { return [name] }
        for subcommand in root.configuration.subcommands {
            if let rest = commandPath(to: target, from: subcommand) { return [name] + rest }
        }
        return nil
    }
}
