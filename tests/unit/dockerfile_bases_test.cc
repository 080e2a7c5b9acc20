#include "agent/dockerfile_bases.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace manifold {
namespace {

using Names = std::vector<std::string>;

TEST(DockerfileBasesTest, FromLinesNormalisedAsStorageNamesThem) {
  EXPECT_EQ(DockerfileBases("FROM busybox\nRUN true\n", {}),
            Names{"docker.io/library/busybox:latest"});
  EXPECT_EQ(DockerfileBases("from --platform=$BUILDPLATFORM 127.0.0.1:5000/team/app:1.2\n", {}),
            Names{"127.0.0.1:5000/team/app:1.2"});
}

TEST(DockerfileBasesTest, StagesAndScratchAreNotImages) {
  EXPECT_EQ(DockerfileBases("FROM golang:1.21 AS build\nRUN go build\n"
                            "FROM scratch\nCOPY --from=build /app /app\n"
                            "COPY --from=0 /x /x\nCOPY --from=alpine:3 /etc/os-release /\n"
                            "FROM build AS again\n",
                            {}),
            (Names{"docker.io/library/golang:1.21", "docker.io/library/alpine:3"}));
}

TEST(DockerfileBasesTest, BuildArgsAndArgDefaultsArePutIn) {
  const char* dockerfile = "ARG BASE=debian\nARG TAG\nFROM ${BASE}:${TAG:-12}\nFROM $BASE\n";
  EXPECT_EQ(DockerfileBases(dockerfile, {}),
            (Names{"docker.io/library/debian:12", "docker.io/library/debian:latest"}));
  EXPECT_EQ(DockerfileBases(dockerfile, {{"BASE", "ubuntu"}, {"TAG", "24.04"}}),
            (Names{"docker.io/library/ubuntu:24.04", "docker.io/library/ubuntu:latest"}));
}

TEST(DockerfileBasesTest, WhatCannotBeKnownIsLeftOut) {
  EXPECT_EQ(DockerfileBases("FROM $UNSET\nFROM Not_A_Reference!\n# FROM busybox\n", {}), Names{});
  EXPECT_EQ(DockerfileBases("FROM \\\n  busybox\n", {}), Names{"docker.io/library/busybox:latest"});
}

}  // namespace
}  // namespace manifold
