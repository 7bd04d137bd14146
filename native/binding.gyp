{
  "targets": [{
    "target_name": "fuse",
    "include_dirs": [
      "<!(node -p \"require('path').dirname(require.resolve('napi-macros/package.json', { paths: [require.resolve('fuse-native/package.json')] }))\")",
      "<!(node -e \"require(require.resolve('fuse-shared-library/include', { paths: [require.resolve('fuse-native/package.json')] }))\")"
    ],
    "libraries": [
      "<!(node -e \"require(require.resolve('fuse-shared-library/lib', { paths: [require.resolve('fuse-native/package.json')] }))\")"
    ],
    "sources": ["fuse-native.c"],
    "cflags": ["-g", "-O2", "-Wall"]
  }]
}
