{
  "//": "Forwards node-gyp (prebuild tools, electron-rebuild) to CMakeLists.txt, the one build truth.",
  "targets": [
    {
      "target_name": "srf_native",
      "type": "none",
      "actions": [
        {
          "action_name": "cmake_js_compile",
          "inputs": ["CMakeLists.txt"],
          "outputs": ["build/Release/srf_native.node"],
          "action": ["sh", "-c", "cd '<(module_root_dir)' && node scripts/build-native.mjs"]
        }
      ]
    }
  ]
}
