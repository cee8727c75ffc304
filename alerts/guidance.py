"""Defence guidance for the public, per hazard and level, in Chinese and English.

Our own wording, following the national guidance (《气象灾害预警信号及防御指南》
and the earthquake emergency plans). Messages and CAP ``instruction`` both
take it from here.
"""

from __future__ import annotations

from alerts.model import Hazard, Level

__all__ = ["guidance"]

_SEVERE = Level.ORANGE  # from orange up, the stronger advice applies

_ZH: dict[Hazard, tuple[str, str]] = {  # (blue/yellow, orange/red)
    Hazard.RAINSTORM: (
        "注意防范城乡积涝，远离低洼地带和河道，切勿涉水行车。",
        "停止户外活动和集会，远离河道、低洼和山体易滑坡地带，切勿涉水行车；"
        "危险地带人员服从安排及时转移，防范山洪和地质灾害。",
    ),
    Hazard.BLIZZARD: (
        "减少外出，注意防寒保暖，驾车减速慢行。",
        "非必要不外出，加固大棚和简易建筑，做好道路除雪和牲畜防寒。",
    ),
    Hazard.GALE: (
        "关好门窗，加固围板、棚架、广告牌等易被吹动的搭建物。",
        "停止户外作业和高空作业，远离临时搭建物和大树，船舶回港避风。",
    ),
    Hazard.TYPHOON: (
        "关注台风动态，加固门窗和室外物品，船舶注意避风。",
        "留在室内或到安全场所避风，远离海边、危旧房屋和临时建筑，服从转移安排。",
    ),
    Hazard.COLD_WAVE: (
        "注意添衣保暖，防范大风降温对交通和设施的影响。",
        "老弱病人减少外出，做好农作物、牲畜和水管防冻。",
    ),
    Hazard.HEAT: (
        "避免午后高温时段户外活动，多饮水，注意防暑降温。",
        "停止午后户外作业，关注老人、儿童和慢性病患者，注意用电和防火安全。",
    ),
    Hazard.FOG: (
        "驾驶人员减速慢行、保持车距，注意交通安全。",
        "机场、高速公路和轮渡注意调度，非必要不驾车出行。",
    ),
    Hazard.HAZE: (
        "减少户外活动，外出佩戴口罩。",
        "儿童、老人和呼吸道疾病患者留在室内，停止户外体育活动。",
    ),
    Hazard.FROST: (
        "农作物和设施采取覆盖、熏烟等防冻措施。",
        "及时采取防冻措施，减少霜冻对农业生产的损失。",
    ),
    Hazard.ROAD_ICING: (
        "行人注意防滑，驾车减速慢行。",
        "非必要不驾车出行，交通部门及时除冰，注意交通管制信息。",
    ),
    Hazard.SANDSTORM: (
        "关好门窗，外出佩戴口罩和护目镜。",
        "停止户外活动，老人、儿童和病人留在室内，注意交通安全。",
    ),
    Hazard.LIGHTNING: (
        "留在室内，远离孤立大树、电线杆和高处。",
        "停止户外作业，切断危险电源，不使用淋浴和固定电话。",
    ),
    Hazard.HAIL: (
        "到室内躲避，保护车辆和农作物。",
        "立即到室内躲避，远离窗户，注意防雷。",
    ),
    Hazard.DROUGHT: (
        "节约用水，做好抗旱准备。",
        "启动抗旱应急措施，保障人畜饮水，调度水源灌溉。",
    ),
    Hazard.FLOOD: (
        "远离河道和低洼地区，关注水情信息。",
        "按照指引有序转移到安全地带，不要涉水、不要靠近堤防。",
    ),
    Hazard.TSUNAMI: (
        "远离海滩和港口，关注官方信息。",
        "立即远离海岸向高处转移，服从当地指挥，警报解除前不要返回。",
    ),
    Hazard.EARTHQUAKE: (
        "如感到摇晃，就近躲避在坚固家具旁，震后有序撤离至空旷处；注意余震，以官方信息为准。",
        "震区群众远离受损建筑，到空旷安全地带避险，警惕强余震；不要返回危房取物，"
        "注意滑坡、崩塌、堰塞湖等次生灾害；服从统一指挥，拨打119/120求助。",
    ),
}

_EN: dict[Hazard, tuple[str, str]] = {
    Hazard.RAINSTORM: (
        "Watch for urban flooding; keep away from low-lying areas and rivers; do not drive "
        "through water.",
        "Stop outdoor activities; leave river banks, low ground and slopes prone to "
        "landslides; follow evacuation orders.",
    ),
    Hazard.EARTHQUAKE: (
        "If you feel shaking, take cover by sturdy furniture, then move to open ground; "
        "expect aftershocks.",
        "Stay away from damaged buildings, move to open ground, expect strong aftershocks "
        "and landslides; follow the authorities.",
    ),
    Hazard.TYPHOON: (
        "Secure windows and outdoor objects; vessels seek shelter.",
        "Stay indoors or in a shelter, away from the coast and weak buildings; follow "
        "evacuation orders.",
    ),
    Hazard.GALE: (
        "Close windows; secure hoardings, sheds and signboards.",
        "Stop outdoor and high-altitude work; keep away from temporary structures and trees.",
    ),
    Hazard.HEAT: (
        "Avoid outdoor activity in the afternoon heat; drink water.",
        "Stop outdoor work in the afternoon; check on the elderly, children and the sick.",
    ),
}

_GENERIC_EN = (
    "Follow official information and take precautions.",
    "Take protective action now and follow the instructions of the authorities.",
)


def guidance(hazard: Hazard, level: Level, language: str = "zh-CN") -> str:
    """The advice for the public for this hazard at this level."""
    severe = int(level >= _SEVERE)
    if language.lower().startswith("zh"):
        return _ZH.get(hazard, ("请关注官方发布的最新信息。", "请按照当地政府指引采取防护措施。"))[
            severe
        ]
    return _EN.get(hazard, _GENERIC_EN)[severe]
