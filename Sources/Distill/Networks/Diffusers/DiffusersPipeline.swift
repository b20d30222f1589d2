import Foundation
import DistillCore

extension TrainedModel {
    /// The files of a diffusers pipeline folder this library reads, relative to the folder.
    /// Nothing else is opened, whatever the files name.
    static let diffusersPipelineFiles = (index: "model_index.json", scheduler: "scheduler/scheduler_config.json")

    /// Whether `path` is a folder holding `model_index.json`, i.e. a diffusers pipeline.
    package static func isDiffusersPipeline(_ path: String) -> Bool {
        var isFolder: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) && isFolder.boolValue
            && FileManager.default.fileExists(atPath: (path as NSString).appendingPathComponent(diffusersPipelineFiles.index))
    }

    /// Loads a diffusers pipeline folder (`model_index.json`, `unet/` and `scheduler/`, as
    /// `save_pretrained` writes them) as a diffusion model: the `UNet2DModel` of `unet/`
    /// (``DiffusersUNet2D/load(from:)``) under the process, parameterization and timestep input
    /// of `scheduler/scheduler_config.json` (``DiffusersScheduler``). Its default plan is
    /// diffusers' DDIM pipeline default, 50 steps with η = 0 (``DiffusersScheduler/defaultPlan``);
    /// its data range is [−1, 1], the range diffusers' image pipelines decode from.
    ///
    /// `model_index.json` must name the `unet` as ["diffusers", "UNet2DModel"] and the
    /// `scheduler` as a "DDPMScheduler" or "DDIMScheduler" of "diffusers".
    ///
    /// - Throws: ``IOError`` for unreadable or malformed files, ``DiffusersError`` naming the
    ///   file and field at fault, ``ModelCardError`` when the UNet cannot be a diffusion model
    ///   (output channels differ from input channels).
    package static func loadDiffusersPipeline(_ folder: String) throws -> TrainedModel {
        func inside(_ name: String) -> String { (folder as NSString).appendingPathComponent(name) }
        let indexPath = inside(diffusersPipelineFiles.index)
        let index = try DiffusersConfigReader(bytes: FileIO.read(indexPath, maximumSize: DiffusersScheduler.maximumFileSize), file: indexPath)
        try checkComponent(index, "unet", classes: ["UNet2DModel"])
        try checkComponent(index, "scheduler", classes: ["DDPMScheduler", "DDIMScheduler"])
        let scheduler = try DiffusersScheduler.read(inside(diffusersPipelineFiles.scheduler))
        let unet = try DiffusersUNet2D.load(from: inside("unet"))
        let c = unet.configuration
        var card = ModelCard(architecture: .diffusersUNet(c), process: scheduler.process, parameterization: scheduler.parameterization,
                             conditioning: .diffusersTimestep, dataShape: [c.inChannels, c.sampleSize, c.sampleSize],
                             dataSource: "diffusers pipeline", classCount: c.numClassEmbeds,
                             provenance: "diffusers pipeline \(folder): UNet2DModel, \(scheduler.className) "
                                 + "(\(scheduler.trainSteps) steps, \(scheduler.betaSchedule.rawValue) β, \(scheduler.parameterization.rawValue) prediction)")
        card.plan = scheduler.defaultPlan
        card.dataRange = [-1, 1]
        try card.validate(source: folder, storedValues: nil)
        return TrainedModel(network: unet, card: card)
    }

    /// Checks that `model_index.json` names component `key` as ["diffusers", one of `classes`].
    static func checkComponent(_ index: DiffusersConfigReader, _ key: String, classes: [String]) throws {
        let expected = classes.map { "[\"diffusers\", \"\($0)\"]" }.joined(separator: " or ")
        guard case let .array(entry)? = index.fields[key], entry.count == 2,
              case .string("diffusers") = entry[0], case let .string(name) = entry[1] else {
            throw index.invalid(key, expected)
        }
        guard classes.contains(name) else { throw index.unsupported(key, expected) }
    }
}
