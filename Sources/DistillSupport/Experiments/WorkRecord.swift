import Distill
import Foundation

/// A finished piece of a long evidence run (one seed, one method), kept in a work folder so that
/// a stopped run resumes after it: the piece's results and a fingerprint of the settings that
/// produced them. A record is read back only under the same fingerprint and only when its
/// results pass the piece's own checks; anything else is refused with the file's name, never
/// silently recomputed over.
package struct WorkRecord<Payload: Codable>: Codable {
    package var fingerprint: String
    package var payload: Payload

    package init(fingerprint: String, payload: Payload) {
        self.fingerprint = fingerprint
        self.payload = payload
    }

    /// The payload of the record at `path`. `isValid` checks the results' ranges.
    ///
    /// - Throws: `TrainingError.invalidConfiguration` naming `path` for an unreadable or
    ///   malformed file (over 16 MB included), a record of other settings, or results out of range.
    package static func load(_ path: String, fingerprint: String, isValid: (Payload) -> Bool) throws -> Payload {
        let record: WorkRecord
        do { record = try JSONDecoder().decode(WorkRecord.self, from: Data(FileIO.read(path, maximumSize: 1 << 24))) } catch {
            throw TrainingError.invalidConfiguration("\(path): not a finished piece of this evidence run (\(error)); remove it to run it again")
        }
        guard record.fingerprint == fingerprint else {
            throw TrainingError.invalidConfiguration("\(path) was written by a run with other settings; remove it or use another work folder")
        }
        guard isValid(record.payload) else {
            throw TrainingError.invalidConfiguration("\(path): results out of range; remove it to run it again")
        }
        return record.payload
    }

    /// Writes the record to `path` atomically.
    package func write(_ path: String) throws {
        try FileIO.writeAtomically(path, Array(try JSONEncoder().encode(self)))
    }

    /// The payload read from `dir/name` when an earlier run finished it there (`reused`), otherwise
    /// `compute`d and written there (`dir` nil: computed, nothing kept). `log` hears reads.
    package static func reuse(_ dir: String?, _ name: String, fingerprint: String, log: ((String) -> Void)?,
                              isValid: (Payload) -> Bool, compute: () throws -> Payload) throws -> (payload: Payload, reused: Bool) {
        guard let dir else { return (try compute(), false) }
        let path = "\(dir)/\(name)"
        if FileManager.default.fileExists(atPath: path) {
            let payload = try load(path, fingerprint: fingerprint, isValid: isValid)
            log?("\(name): read from \(dir)")
            return (payload, true)
        }
        let payload = try compute()
        try WorkRecord(fingerprint: fingerprint, payload: payload).write(path)
        return (payload, false)
    }
}

/// A fingerprint of settings for ``WorkRecord``: their JSON with sorted keys, plus `extra`.
package func workFingerprint(_ settings: some Encodable, _ extra: String = "") throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = .sortedKeys
    return String(decoding: try encoder.encode(settings), as: UTF8.self) + extra
}
